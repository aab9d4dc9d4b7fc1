/*
 * slow-fsync: an LD_PRELOAD fault injector for the disk under a process (docs/storage.md, "Testing the
 * durability path"). It makes every fsync(2) and fdatasync(2) slower, as on an SD card, an eMMC bedside box
 * or a busy disk, or stalls them completely while a file exists:
 *
 *   MSC_FSYNC_DELAY_MS=10        each call sleeps 10 ms before it syncs
 *   MSC_FSYNC_STALL_FILE=/tmp/x  while /tmp/x exists, each call waits (polled every 5 ms): a stalled disk
 *
 * Writes (write(2), pwrite(2)) are not slowed: on Linux they land in the page cache and a slow device shows
 * in the calls that wait for it, until the kernel's dirty-page limit is reached: then write(2) itself blocks.
 * That is injected separately, on the files it names only:
 *
 *   MSC_WRITE_STALL_FILE=/tmp/y   while /tmp/y exists, write, pwrite, pwrite64, writev and pwritev on a file
 *   MSC_WRITE_STALL_MATCH=journal  whose path (/proc/self/fd) contains "journal" wait (polled every 5 ms)
 *
 * Build: cc -shared -fPIC -O2 -o slow-fsync.so slow-fsync.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms) {
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep(&ts, &ts) != 0) {}
}

static void disk_wait(void) {
  const char *delay = getenv("MSC_FSYNC_DELAY_MS");
  if (delay) {
    long ms = atol(delay);
    if (ms > 0) sleep_ms(ms);
  }
  const char *stall = getenv("MSC_FSYNC_STALL_FILE");
  if (stall && *stall) {
    struct stat st;
    while (stat(stall, &st) == 0) sleep_ms(5);
  }
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  disk_wait();
  return real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  disk_wait();
  return real(fd);
}

/* Whether a write to fd must wait: the stall file exists and the fd's path contains the match. */
static int write_stalled(int fd) {
  const char *stall = getenv("MSC_WRITE_STALL_FILE");
  if (!stall || !*stall) return 0;
  struct stat st;
  if (stat(stall, &st) != 0) return 0;
  const char *match = getenv("MSC_WRITE_STALL_MATCH");
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = 0;
  return match && *match ? strstr(path, match) != NULL : 1;
}

static void write_wait(int fd) {
  if (!write_stalled(fd)) return;
  const char *stall = getenv("MSC_WRITE_STALL_FILE");
  struct stat st;
  while (stat(stall, &st) == 0) sleep_ms(5);
}

ssize_t write(int fd, const void *buf, size_t count) {
  static ssize_t (*real)(int, const void *, size_t);
  if (!real) real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
  write_wait(fd);
  return real(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
  static ssize_t (*real)(int, const void *, size_t, off_t);
  if (!real) real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
  write_wait(fd);
  return real(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
  static ssize_t (*real)(int, const void *, size_t, off64_t);
  if (!real) real = (ssize_t (*)(int, const void *, size_t, off64_t))dlsym(RTLD_NEXT, "pwrite64");
  write_wait(fd);
  return real(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  static ssize_t (*real)(int, const struct iovec *, int);
  if (!real) real = (ssize_t (*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
  write_wait(fd);
  return real(fd, iov, iovcnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
  static ssize_t (*real)(int, const struct iovec *, int, off_t);
  if (!real) real = (ssize_t (*)(int, const struct iovec *, int, off_t))dlsym(RTLD_NEXT, "pwritev");
  write_wait(fd);
  return real(fd, iov, iovcnt, offset);
}
