"""Generate docs/api.md: the API reference of support/ from its docstrings (run by `make docs`)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

import support

ROOT = Path(__file__).resolve().parents[1]


def first_paragraph(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


def signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "(...)"


def document(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    lines = [f"## `{module_name}`", "", first_paragraph(module) or "_(no module docstring)_", ""]
    for name, obj in inspect.getmembers(module):
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if inspect.isclass(obj):
            lines.append(f"- **class `{name}`** — {first_paragraph(obj)}")
            for meth_name, meth in inspect.getmembers(obj, inspect.isfunction):
                if meth_name.startswith("_") or meth.__qualname__.split(".")[0] != name:
                    continue
                about = f" — {first_paragraph(meth)}" if meth.__doc__ else ""
                lines.append(f"  - `{meth_name}{signature(meth)}`{about}")
        elif inspect.isfunction(obj):
            lines.append(f"- `{name}{signature(obj)}`" + (f" — {first_paragraph(obj)}" if obj.__doc__ else ""))
    lines.append("")
    return lines


def main() -> int:
    # a __main__ module runs its program when imported
    names = sorted(m.name for m in pkgutil.walk_packages(support.__path__, "support.")
                   if not m.name.endswith(".__main__"))
    out = ["# API reference of `support/`", "", "Generated from the docstrings by `make docs`; do not edit by hand.",
           ""]
    for name in names:
        out += document(name)
    Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "api.md").write_text("\n".join(out).rstrip() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
