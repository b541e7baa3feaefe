"""Documentation generated from the schema module (the README's column table).

Example:
    >>> print(columns_markdown().splitlines()[0])
    | grain | column | type | description |
"""

from __future__ import annotations

from coreviz_frames.schema import COLUMN_DOCS, GRAINS, SCHEMAS, pandas_dtype

__all__: list[str] = []


def columns_markdown() -> str:
    """A Markdown table of every grain's columns, pandas dtypes and descriptions."""
    lines = ["| grain | column | type | description |", "|---|---|---|---|"]
    for grain in GRAINS:
        for field in SCHEMAS[grain]:
            doc = COLUMN_DOCS[grain][field.name].replace("|", "\\|")
            lines.append(f"| {grain} | `{field.name}` | {pandas_dtype(field.type)} | {doc} |")
    return "\n".join(lines)


START, END = "<!-- columns:start -->", "<!-- columns:end -->"


def render_readme(text: str) -> str:
    """``text`` with the column table between the README's markers regenerated."""
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{columns_markdown()}\n{END}{tail}"


if __name__ == "__main__":  # python -m coreviz_frames._docs README.md
    import sys
    from pathlib import Path

    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    readme.write_text(render_readme(readme.read_text()))
