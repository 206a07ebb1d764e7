// SPDX-License-Identifier: GPL-2.0
/*
 * Host side of configs/um.conf, preloaded into the UML kernel binary by
 * configs/um/boot: UML 6.1 saves and restores its processes' FPU state
 * with PTRACE_GETREGSET/SETREGSET NT_X86_XSTATE in a buffer of its own
 * fixed size (HOST_FP_SIZE, 2696 bytes: up to AVX-512 and PKRU), and a
 * host whose XSAVE area is larger (AMX: 11008 bytes) refuses every
 * SETREGSET that is not of its full size with EFAULT ("userspace - ptrace
 * set fp regs failed, errno = 14", init killed by SIGSEGV). Here both go
 * through a buffer of the host's size: GETREGSET hands UML the part it
 * knows, SETREGSET writes UML's part over the task's current state.
 * Later kernels size the buffer from CPUID themselves.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <cpuid.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

long ptrace(enum __ptrace_request req, ...)
{
	static long (*real)(enum __ptrace_request, pid_t, void *, void *);
	static unsigned int host;
	static char buf[16384] __attribute__((aligned(64)));
	va_list ap;
	pid_t pid;
	void *addr, *data;

	va_start(ap, req);
	pid = va_arg(ap, pid_t);
	addr = va_arg(ap, void *);
	data = va_arg(ap, void *);
	va_end(ap);
	if (!real)
		real = dlsym(RTLD_NEXT, "ptrace");
	if (!host) {
		unsigned int a, b, c, d;
		__cpuid_count(0xd, 0, a, b, c, d);
		host = c;
	}
	if ((req == PTRACE_GETREGSET || req == PTRACE_SETREGSET) &&
	    (long)addr == NT_X86_XSTATE && host <= sizeof(buf) &&
	    ((struct iovec *)data)->iov_len < host) {
		struct iovec *iov = data, full;
		long r;

		full.iov_base = buf;
		full.iov_len = host;
		r = real(PTRACE_GETREGSET, pid, addr, &full);
		if (!r && req == PTRACE_GETREGSET) {
			memcpy(iov->iov_base, buf, iov->iov_len);
		} else if (!r) {
			memcpy(buf, iov->iov_base, iov->iov_len);
			r = real(PTRACE_SETREGSET, pid, addr, &full);
		}
		return r;
	}
	return real(req, pid, addr, data);
}
