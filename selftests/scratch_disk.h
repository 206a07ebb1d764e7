/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest's scratch disk: the image scripts/lib/guest.sh creates for a
 * guest whose configs/<arch>.conf sets GUEST_DISK_MB, whatever the block
 * driver calls it (virtio-blk's vda, UML's ubda). Its first sector starts
 * with SCRATCH_MAGIC; the guest's init (scripts/guest/init.c) looks for
 * that sector among the block devices and links SCRATCH_DISK to the one
 * that has it. The tests that overwrite the disk check the magic again,
 * so that no other device, whatever a user passes them, is ever written.
 */
#ifndef COWGUARD_SCRATCH_DISK_H
#define COWGUARD_SCRATCH_DISK_H

#define SCRATCH_DISK	"/dev/scratch"
#define SCRATCH_MAGIC	"cowguard scratch disk\n"

#endif
