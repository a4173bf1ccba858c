/*
 * bcryptprimitives.dll for Wine 8: exports ProcessPrng, nothing else.
 *
 * Why: Rust's standard library (1.78 and later) fills its random numbers, HashMap's seeds
 * among them, from ProcessPrng in bcryptprimitives.dll, resolved at load time. Wine 8 (Debian
 * 12's) has no such export, so every Rust program for Windows fails to start under it. This
 * forwards to advapi32's SystemFunction036 (RtlGenRandom), which Wine implements with the
 * host's random source. The test harness builds it with mingw and places it in the private
 * Wine prefix's system32 only; it is never part of an installer: real Windows has its own.
 *
 * Built by: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll processprng.c -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    /* RtlGenRandom takes a ULONG: fill larger requests in pieces. */
    while (length > 0) {
        ULONG piece = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, piece))
            return FALSE;
        data += piece;
        length -= piece;
    }
    return TRUE;
}
