#!/usr/bin/env python3
"""Draws Lapwing's icon set: the tray's four state icons and the app icons.

Only the standard library (zlib, struct), so the set is reproducible anywhere:
    python3 icons/generate.py
The drawings are simple on purpose: a disc in the state's colour with a white mark that
still reads at 16 px, and for the app a lapwing's head with its crest.
"""

import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = 4  # per axis, for anti-aliasing

# State colours: chosen to stay apart for the common colour-vision deficiencies.
COLOURS = {
    "ok": (0x2E, 0x7D, 0x32),
    "attention": (0xE0, 0x8E, 0x0B),
    "broken": (0xC6, 0x28, 0x28),
    "working": (0x15, 0x65, 0xC0),
}
APP = (0x1F, 0x4E, 0x5A)
WHITE = (0xFF, 0xFF, 0xFF)


def png_bytes(size, pixel):
    """An RGBA PNG; pixel(x, y) gives (r, g, b, a) for the unit square's point."""
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # filter: none
        for x in range(size):
            acc = [0.0, 0.0, 0.0, 0.0]
            for sy in range(SAMPLES):
                for sx in range(SAMPLES):
                    u = (x + (sx + 0.5) / SAMPLES) / size
                    v = (y + (sy + 0.5) / SAMPLES) / size
                    r, g, b, a = pixel(u, v)
                    acc[0] += r * a
                    acc[1] += g * a
                    acc[2] += b * a
                    acc[3] += a
            n = SAMPLES * SAMPLES
            alpha = acc[3] / n
            if alpha > 0:
                colour = [round(c / acc[3]) for c in acc[:3]]
            else:
                colour = [0, 0, 0]
            rows.extend(bytes(colour + [round(alpha * 255)]))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b"")


def png(path, size, pixel):
    with open(path, "wb") as f:
        f.write(png_bytes(size, pixel))


def ico(path, images):
    """A Windows .ico holding PNG images (Vista and later read PNG entries), {size: png}."""
    sizes = sorted(images)
    offset = 6 + 16 * len(sizes)
    head = struct.pack("<HHH", 0, 1, len(sizes))
    body = b""
    for size in sizes:
        data = images[size]
        # A width or height of 256 is written as 0.
        head += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(data), offset + len(body))
        body += data
    with open(path, "wb") as f:
        f.write(head + body)


# The PNG-holding .icns types: 16@2x, 32@2x, 128, 256 (and 128@2x), 512 (and 256@2x).
ICNS_TYPES = ((b"ic11", 32), (b"ic12", 64), (b"ic07", 128), (b"ic08", 256), (b"ic13", 256), (b"ic09", 512), (b"ic14", 512))


def icns(path, images):
    """A macOS .icns: each entry is a type, a big-endian length that counts its header, a PNG."""
    body = b"".join(kind + struct.pack(">I", 8 + len(images[size])) + images[size] for kind, size in ICNS_TYPES)
    with open(path, "wb") as f:
        f.write(b"icns" + struct.pack(">I", 8 + len(body)) + body)


def segment_distance(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def strokes(u, v, lines, width):
    return any(segment_distance(u, v, *line) <= width / 2 for line in lines)


MARKS = {
    # A tick.
    "ok": ([(0.30, 0.52, 0.44, 0.66), (0.44, 0.66, 0.71, 0.36)], []),
    # An exclamation mark.
    "attention": ([(0.50, 0.26, 0.50, 0.58)], [(0.50, 0.74, 0.06)]),
    # A cross.
    "broken": ([(0.33, 0.33, 0.67, 0.67), (0.67, 0.33, 0.33, 0.67)], []),
    # Three dots: something is under way.
    "working": ([], [(0.30, 0.50, 0.075), (0.50, 0.50, 0.075), (0.70, 0.50, 0.075)]),
}


def state_icon(state):
    colour = COLOURS[state]
    lines, dots = MARKS[state]

    def pixel(u, v):
        if math.hypot(u - 0.5, v - 0.5) > 0.47:
            return (0, 0, 0, 0.0)
        if strokes(u, v, lines, 0.12) or any(math.hypot(u - x, v - y) <= r for x, y, r in dots):
            return WHITE + (1.0,)
        return colour + (1.0,)

    return pixel


def app_icon(u, v):
    """A lapwing's head in profile: round head, beak to the right, the long crest sweeping back."""
    if math.hypot(u - 0.5, v - 0.5) > 0.48:
        return (0, 0, 0, 0.0)
    head = math.hypot(u - 0.50, v - 0.56) <= 0.20
    beak = strokes(u, v, [(0.62, 0.58, 0.80, 0.61)], 0.07)
    crest = strokes(u, v, [(0.44, 0.38, 0.30, 0.22), (0.30, 0.22, 0.18, 0.20)], 0.06)
    eye = math.hypot(u - 0.55, v - 0.52) <= 0.035
    if eye:
        return APP + (1.0,)
    if head or beak or crest:
        return WHITE + (1.0,)
    return APP + (1.0,)


def main():
    for state in COLOURS:
        for size in (32, 64):
            png(os.path.join(HERE, "tray", f"{state}-{size}.png"), size, state_icon(state))
    # Every hicolor size a desktop asks for (the Linux packages install each one), the HiDPI
    # 128@2x, and the 512 master; then the Windows and macOS containers from the same images.
    images = {size: png_bytes(size, app_icon) for size in (16, 24, 32, 48, 64, 128, 256, 512)}
    for size in (16, 24, 32, 48, 64, 128, 256):
        with open(os.path.join(HERE, f"{size}x{size}.png"), "wb") as f:
            f.write(images[size])
    for name, size in (("128x128@2x.png", 256), ("icon.png", 512)):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(images[size])
    ico(os.path.join(HERE, "icon.ico"), {size: images[size] for size in (16, 24, 32, 48, 64, 256)})
    icns(os.path.join(HERE, "icon.icns"), images)


if __name__ == "__main__":
    main()
