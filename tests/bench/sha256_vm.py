# SHA-256 chunk hashing throughput, the way the store hashes media (hashlib.sha256 over
# 64 KiB chunks, then the chunk chain). Runs on MicroPython and CPython; prints BENCH lines.
import hashlib
import time

try:
    ticks_ms, ticks_diff = time.ticks_ms, time.ticks_diff
except AttributeError:
    def ticks_ms():
        return int(time.perf_counter() * 1000)

    def ticks_diff(a, b):
        return a - b

CHUNK = 65536
TOTAL = 16 * 1024 * 1024
buf = bytearray(CHUNK)
for i in range(0, CHUNK, 256):
    buf[i] = i & 0xFF
root = bytes(32)
t0 = ticks_ms()
n = 0
while n < TOTAL:
    h = hashlib.sha256(buf).digest()
    root = hashlib.sha256(root + h).digest()
    n += CHUNK
ms = max(1, ticks_diff(ticks_ms(), t0))
print("BENCH sha256_MBps %.2f" % (TOTAL / 1e6 / (ms / 1000)))
