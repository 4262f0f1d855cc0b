#!/usr/bin/python3
"""make_rgb_png.py OUT.png: a 120 x 90 RGB picture for test_cli_score_demo (standard library only):
a colour gradient with a red disc, so the colour path of `aaclip score` gets a non-square input."""
import struct
import sys
import zlib

W, H = 120, 90


def pixel(x, y):
    return (230, 30, 30) if (x - 80) ** 2 + (y - 40) ** 2 < 100 else (x * 2, y * 2, 128)


def chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


rows = b"".join(b"\0" + bytes(v for x in range(W) for v in pixel(x, y)) for y in range(H))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0)) +
       chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
with open(sys.argv[1], "wb") as f:
    f.write(png)
