"""Build check: no kernel object compiled for one ISA may define a weak symbol outside its namespace.

Usage: python check_isa_symbols.py NM OBJECT...  (objects under .../tgc_kernels_<isa>.dir/...)

Inline functions and template instances (std::vector<float>::resize, say) are emitted as weak
symbols in every object that uses them, and the linker keeps one copy for the whole library. If
the AVX-512 objects defined such a symbol, the baseline kernels could end up calling AVX-512
code on a CPU without it. Everything the kernel sources define lives in tgc::<isa> (src/simd.h),
so a weak symbol outside it means a shared header or a std template slipped in: wrap it in the
ISA namespace (src/workspace.h's Array replaces std::vector for plain element types).
"""
import re
import subprocess
import sys

WEAK = {"W", "V", "u"}
# Data, not code, and the same in every object: the DWARF pointer to the C++ personality routine.
ALLOWED = ("DW.ref.__gxx_personality_v0",)


def main(nm, objects):
    bad = []
    for obj in objects:
        m = re.search(r"tgc_kernels_([A-Za-z0-9]+)\.dir", obj)
        if not m:
            continue
        isa = m.group(1)
        out = subprocess.run([nm, "-C", "--defined-only", obj], check=True, capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[1] in WEAK and f"tgc::{isa}::" not in parts[2] \
                    and parts[2] not in ALLOWED:
                bad.append(f"{obj.rsplit('/', 1)[-1]} ({isa}): {parts[2]}")
    if bad:
        print("error: kernel objects define weak symbols outside their ISA namespace "
              "(see cmake/check_isa_symbols.py):\n  " + "\n  ".join(sorted(set(bad))), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], [o for a in sys.argv[2:] for o in a.split("|") if o]))
