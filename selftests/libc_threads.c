// SPDX-License-Identifier: GPL-2.0
/*
 * The guest runs ordinary programs: a static glibc program with threads,
 * mutexes, condition variables, semaphores and timed waits must work on
 * every guest the pipeline boots, or a user who copies a real reproducer
 * into the guest gets an abort instead of an answer.
 *
 * On 32-bit architectures glibc 2.36 still makes the time32 system calls:
 * the futex() of a contended mutex or a condition variable wait, and the
 * fallbacks of its 64-bit time calls. A kernel without
 * CONFIG_COMPAT_32BIT_TIME (what tinyconfig gives) has none of them, and
 * the first wait that reaches the kernel aborts the program with "The
 * futex facility returned an unexpected error code". Every case here
 * waits in the kernel at least once, so each of them fails on such a
 * guest. A case ends in one result line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "kselftest_harness.h"

#define NR_THREADS	4
#define TIMEOUT_MS	100

static int64_t now_ns(clockid_t clock)
{
	struct timespec ts;

	if (clock_gettime(clock, &ts))
		return -1;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* An absolute time ms milliseconds from now on clock, for the timed waits. */
static struct timespec deadline_in(clockid_t clock, long ms)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

FIXTURE(libc_threads)
{
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_barrier_t start;
	unsigned long counter;	/* under lock */
	bool flag;		/* under lock */
};

FIXTURE_SETUP(libc_threads)
{
	ASSERT_EQ(0, pthread_mutex_init(&self->lock, NULL));
	ASSERT_EQ(0, pthread_cond_init(&self->cond, NULL));
	ASSERT_EQ(0, pthread_barrier_init(&self->start, NULL, NR_THREADS));
	self->counter = 0;
	self->flag = false;
}

FIXTURE_TEARDOWN(libc_threads)
{
	pthread_barrier_destroy(&self->start);
	pthread_cond_destroy(&self->cond);
	pthread_mutex_destroy(&self->lock);
}

#define INCREMENTS	20000

static void *increment(void *arg)
{
	FIXTURE_DATA(libc_threads) *self = arg;
	int i;

	/* All start together, so the mutex is contended: futex waits. */
	pthread_barrier_wait(&self->start);
	for (i = 0; i < INCREMENTS; i++) {
		pthread_mutex_lock(&self->lock);
		self->counter++;
		pthread_mutex_unlock(&self->lock);
		if (!(i % 1000))
			sched_yield();
	}
	return (void *)(uintptr_t)i;
}

/* Every increment made under the mutex by threads started together lands. */
TEST_F(libc_threads, mutex_contended)
{
	pthread_t threads[NR_THREADS];
	void *ret;
	int i;

	for (i = 0; i < NR_THREADS; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, increment, self));
	for (i = 0; i < NR_THREADS; i++) {
		ASSERT_EQ(0, pthread_join(threads[i], &ret));
		ASSERT_EQ((uintptr_t)INCREMENTS, (uintptr_t)ret);
	}
	ASSERT_EQ((unsigned long)NR_THREADS * INCREMENTS, self->counter);
}

#define HANDOFFS	2000

/* The consumer side of a one-slot queue: counter is the slot, flag full. */
static void *consume(void *arg)
{
	FIXTURE_DATA(libc_threads) *self = arg;
	unsigned long sum = 0;
	int i;

	for (i = 0; i < HANDOFFS; i++) {
		pthread_mutex_lock(&self->lock);
		while (!self->flag)
			pthread_cond_wait(&self->cond, &self->lock);
		sum += self->counter;
		self->flag = false;
		pthread_cond_signal(&self->cond);
		pthread_mutex_unlock(&self->lock);
	}
	return (void *)(uintptr_t)sum;
}

/* Values handed one at a time through a condition variable all arrive. */
TEST_F(libc_threads, condvar_handoff)
{
	unsigned long i, expect = 0;
	pthread_t consumer;
	void *sum;

	ASSERT_EQ(0, pthread_create(&consumer, NULL, consume, self));
	for (i = 1; i <= HANDOFFS; i++) {
		pthread_mutex_lock(&self->lock);
		while (self->flag)
			pthread_cond_wait(&self->cond, &self->lock);
		self->counter = i;
		self->flag = true;
		pthread_cond_signal(&self->cond);
		pthread_mutex_unlock(&self->lock);
		expect += i;
	}
	ASSERT_EQ(0, pthread_join(consumer, &sum));
	ASSERT_EQ(expect, (uintptr_t)sum);
}

/*
 * A timed wait nobody ends returns ETIMEDOUT, and not before its deadline:
 * on the condition variable's clock (CLOCK_REALTIME by default,
 * CLOCK_MONOTONIC with pthread_condattr_setclock()).
 */
static void cond_wait_expires(struct __test_metadata *_metadata,
			      FIXTURE_DATA(libc_threads) *self, clockid_t clock)
{
	pthread_condattr_t attr;
	pthread_cond_t cond;
	struct timespec deadline;
	int64_t start, end;
	int ret;

	ASSERT_EQ(0, pthread_condattr_init(&attr));
	ASSERT_EQ(0, pthread_condattr_setclock(&attr, clock));
	ASSERT_EQ(0, pthread_cond_init(&cond, &attr));
	pthread_condattr_destroy(&attr);

	pthread_mutex_lock(&self->lock);
	start = now_ns(clock);
	deadline = deadline_in(clock, TIMEOUT_MS);
	do
		ret = pthread_cond_timedwait(&cond, &self->lock, &deadline);
	while (!ret);	/* a spurious wakeup: wait again */
	end = now_ns(clock);
	pthread_mutex_unlock(&self->lock);
	pthread_cond_destroy(&cond);

	ASSERT_EQ(ETIMEDOUT, ret);
	ASSERT_GE(end - start, (int64_t)TIMEOUT_MS * 1000000);
}

TEST_F(libc_threads, cond_timedwait_realtime_expires)
{
	cond_wait_expires(_metadata, self, CLOCK_REALTIME);
}

TEST_F(libc_threads, cond_timedwait_monotonic_expires)
{
	cond_wait_expires(_metadata, self, CLOCK_MONOTONIC);
}

static void *set_flag_later(void *arg)
{
	FIXTURE_DATA(libc_threads) *self = arg;

	sleep_ms(20);
	pthread_mutex_lock(&self->lock);
	self->flag = true;
	pthread_cond_signal(&self->cond);
	pthread_mutex_unlock(&self->lock);
	return NULL;
}

/* A timed wait that another thread ends returns 0 before its deadline. */
TEST_F(libc_threads, cond_timedwait_woken)
{
	struct timespec deadline;
	pthread_t waker;
	int ret = 0;

	ASSERT_EQ(0, pthread_create(&waker, NULL, set_flag_later, self));
	/* Long enough for any TCG guest; a lost wakeup ends in ETIMEDOUT. */
	deadline = deadline_in(CLOCK_REALTIME, 20000);
	pthread_mutex_lock(&self->lock);
	while (!self->flag && !ret)
		ret = pthread_cond_timedwait(&self->cond, &self->lock, &deadline);
	pthread_mutex_unlock(&self->lock);
	ASSERT_EQ(0, pthread_join(waker, NULL));
	ASSERT_EQ(0, ret);
	ASSERT_TRUE(self->flag);
}

/* Holds lock until the test sets flag; counter says it holds it. */
static void *hold_lock(void *arg)
{
	FIXTURE_DATA(libc_threads) *self = arg;

	pthread_mutex_lock(&self->lock);
	__atomic_store_n(&self->counter, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&self->flag, __ATOMIC_ACQUIRE))
		sleep_ms(5);
	pthread_mutex_unlock(&self->lock);
	return NULL;
}

/* pthread_mutex_timedlock() on a mutex another thread holds times out. */
TEST_F(libc_threads, mutex_timedlock_expires)
{
	struct timespec deadline;
	pthread_t holder;
	int64_t start, end;
	int ret;

	ASSERT_EQ(0, pthread_create(&holder, NULL, hold_lock, self));
	while (!__atomic_load_n(&self->counter, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	start = now_ns(CLOCK_REALTIME);
	deadline = deadline_in(CLOCK_REALTIME, TIMEOUT_MS);
	ret = pthread_mutex_timedlock(&self->lock, &deadline);
	end = now_ns(CLOCK_REALTIME);
	__atomic_store_n(&self->flag, true, __ATOMIC_RELEASE);
	ASSERT_EQ(0, pthread_join(holder, NULL));
	ASSERT_EQ(ETIMEDOUT, ret);
	ASSERT_GE(end - start, (int64_t)TIMEOUT_MS * 1000000);
	/* Free again once the holder let go. */
	ASSERT_EQ(0, pthread_mutex_trylock(&self->lock));
	pthread_mutex_unlock(&self->lock);
}

static void *post_later(void *arg)
{
	sleep_ms(20);
	sem_post(arg);
	return NULL;
}

/* sem_timedwait() times out on an empty semaphore, returns on a post. */
TEST_F(libc_threads, sem_timedwait)
{
	struct timespec deadline;
	pthread_t poster;
	int64_t start, end;
	sem_t sem;
	int ret;

	ASSERT_EQ(0, sem_init(&sem, 0, 0));
	start = now_ns(CLOCK_REALTIME);
	deadline = deadline_in(CLOCK_REALTIME, TIMEOUT_MS);
	while ((ret = sem_timedwait(&sem, &deadline)) && errno == EINTR)
		;
	end = now_ns(CLOCK_REALTIME);
	ASSERT_EQ(-1, ret);
	ASSERT_EQ(ETIMEDOUT, errno);
	ASSERT_GE(end - start, (int64_t)TIMEOUT_MS * 1000000);

	ASSERT_EQ(0, pthread_create(&poster, NULL, post_later, &sem));
	deadline = deadline_in(CLOCK_REALTIME, 20000);
	while ((ret = sem_timedwait(&sem, &deadline)) && errno == EINTR)
		;
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, pthread_join(poster, NULL));
	sem_destroy(&sem);
}

/* nanosleep() and an absolute clock_nanosleep() sleep at least as asked. */
TEST_F(libc_threads, sleeps)
{
	struct timespec deadline;
	int64_t start, end;
	int ret;

	start = now_ns(CLOCK_MONOTONIC);
	sleep_ms(TIMEOUT_MS);
	end = now_ns(CLOCK_MONOTONIC);
	ASSERT_GE(end - start, (int64_t)TIMEOUT_MS * 1000000);

	start = end;
	deadline = deadline_in(CLOCK_MONOTONIC, TIMEOUT_MS);
	while ((ret = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
				      &deadline, NULL)) == EINTR)
		;
	end = now_ns(CLOCK_MONOTONIC);
	ASSERT_EQ(0, ret);
	ASSERT_GE(end - start, (int64_t)TIMEOUT_MS * 1000000);
}

static __thread unsigned long thread_value;

static void *own_value(void *arg)
{
	FIXTURE_DATA(libc_threads) *self = arg;

	thread_value = (unsigned long)pthread_self();
	pthread_barrier_wait(&self->start);
	/* Every thread has written its own by now: TLS is per thread. */
	return (void *)(uintptr_t)(thread_value == (unsigned long)pthread_self());
}

/* Thread-local storage is per thread; pthread_join() returns the result. */
TEST_F(libc_threads, thread_local)
{
	pthread_t threads[NR_THREADS - 1];
	void *ret;
	int i;

	thread_value = 1;
	for (i = 0; i < NR_THREADS - 1; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, own_value, self));
	pthread_barrier_wait(&self->start);
	for (i = 0; i < NR_THREADS - 1; i++) {
		ASSERT_EQ(0, pthread_join(threads[i], &ret));
		ASSERT_EQ((uintptr_t)1, (uintptr_t)ret);
	}
	ASSERT_EQ(1UL, thread_value);
}

TEST_HARNESS_MAIN
