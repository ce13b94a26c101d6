/*
 * Makes every fsync and fdatasync of a process take SLOW_FSYNC_US microseconds longer, as on an SD
 * card, where a sync takes milliseconds. Loaded into the benchmark's gateway with LD_PRELOAD by
 * `npm run bench -- --fsync-delay-ms N` (bench.ts builds it with gcc).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static long delay_us(void) { static long d = -1; if (d < 0) { const char *e = getenv("SLOW_FSYNC_US"); d = e ? atol(e) : 0; } return d; }
static void pause_us(long us) { struct timespec t = { us / 1000000, (us % 1000000) * 1000 }; while (nanosleep(&t, &t) != 0) {} }
int fsync(int fd) { static int (*real)(int); if (!real) real = dlsym(RTLD_NEXT, "fsync"); pause_us(delay_us()); return real(fd); }
int fdatasync(int fd) { static int (*real)(int); if (!real) real = dlsym(RTLD_NEXT, "fdatasync"); pause_us(delay_us()); return real(fd); }
