/*
 * slow-fsync: an LD_PRELOAD fault injector for the disk under a process (docs/storage.md, "Testing the
 * durability path"). It makes every fsync(2) and fdatasync(2) slower, as on an SD card, an eMMC bedside box
 * or a busy disk, or stalls them completely while a file exists:
 *
 *   MSC_FSYNC_DELAY_MS=10        each call sleeps 10 ms before it syncs
 *   MSC_FSYNC_STALL_FILE=/tmp/x  while /tmp/x exists, each call waits (polled every 5 ms): a stalled disk
 *
 * Writes (write(2), pwrite(2)) are not slowed: on Linux they land in the page cache and a slow device shows
 * in the calls that wait for it. Build: cc -shared -fPIC -O2 -o slow-fsync.so slow-fsync.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
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
