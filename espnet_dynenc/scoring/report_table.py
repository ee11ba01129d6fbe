"""Boxed text tables laid out like sclite's report generator, so that reports match byte for byte.

A row has a layout such as ``"l|cc|cccccc"``: one letter per column (``l`` left, ``c``
centred) and ``|`` where a vertical rule follows a column. Rows with the same number of
columns share column widths (each the widest cell, counted in bytes, as sclite counts).
The table is as wide as its widest layout; narrower layouts (e.g. the one-column title)
spread the difference over their columns. Horizontal rules are requested before a row.
"""
from dataclasses import dataclass, field
from typing import Dict, List

PAGE_WIDTH = 80


def byte_len(text: str) -> int:
    return len(text.encode("utf-8"))


def pad_right(text: str, width: int) -> str:
    """Left-justify in ``width`` bytes."""
    return text + " " * max(0, width - byte_len(text))


def center(text: str, width: int) -> str:
    """Centre in ``width`` bytes; an odd leftover space goes to the right."""
    front = max(0, (width - byte_len(text)) // 2)
    return pad_right(" " * front + text, width)


def c_round(value: float, digits: int) -> float:
    """Round half away from zero at ``digits`` decimals (sclite's F_ROUND, not Python's round)."""
    scale = 10.0 ** digits
    return float(int(value * scale + (0.5 if value > 0.0 else -0.5))) / scale


@dataclass
class _Layout:
    justify: List[str]
    rules: List[str]  # character after each column: '|' or ' '

    @classmethod
    def parse(cls, spec: str) -> "_Layout":
        justify, rules = [], []
        for char in spec:
            if char in "lc":
                justify.append(char)
                rules.append(" ")
            elif char == "|":
                rules[-1] = "|"
            else:
                raise ValueError(f"unsupported layout character '{char}' in '{spec}'")
        return cls(justify, rules)

    @property
    def columns(self) -> int:
        return len(self.justify)


@dataclass
class _Row:
    layout: _Layout
    cells: List[str]
    rules_before: str


@dataclass
class ReportTable:
    rows: List[_Row] = field(default_factory=list)
    _pending_rules: str = ""

    def add_rule(self, char: str) -> None:
        """Draw a horizontal rule of ``char`` before the next row."""
        self._pending_rules += char

    def add_row(self, layout: str, *cells: str) -> None:
        parsed = _Layout.parse(layout)
        if len(cells) != parsed.columns:
            raise ValueError(f"layout '{layout}' has {parsed.columns} columns, got {len(cells)} cells")
        self.rows.append(_Row(parsed, list(cells), self._pending_rules))
        self._pending_rules = ""

    def render(self) -> List[str]:
        """The table's lines, centred on an 80-column page."""
        widths = self._column_widths()
        table_width = max(self._natural_width(widths[row.layout.columns]) for row in self.rows)
        margin = " " * ((PAGE_WIDTH - table_width) // 2) if table_width < PAGE_WIDTH else ""
        lines = [margin + "," + "-" * (table_width - 2) + "."]
        previous = None
        for row in self.rows:
            text_widths = widths[row.layout.columns]
            cell_widths = self._spread(text_widths, table_width)
            for char in row.rules_before:
                lines.append(margin + self._rule_line(row, previous, cell_widths, char))
            lines.append(margin + self._value_line(row, text_widths, cell_widths))
            previous = row
        lines.append(margin + "`" + "-" * (table_width - 2) + "'")
        return lines

    def _column_widths(self) -> Dict[int, List[int]]:
        widths: Dict[int, List[int]] = {}
        for row in self.rows:
            current = widths.setdefault(row.layout.columns, [0] * row.layout.columns)
            for col, cell in enumerate(row.cells):
                current[col] = max(current[col], byte_len(cell))
        return widths

    @staticmethod
    def _natural_width(text_widths: List[int]) -> int:
        # the two outer bars plus one separator between neighbouring columns
        return 2 + sum(text_widths) + len(text_widths) - 1

    def _spread(self, text_widths: List[int], table_width: int) -> List[int]:
        """Widen the columns of a narrower layout; running rounding keeps the total exact."""
        extra = table_width - self._natural_width(text_widths)
        count = len(text_widths)
        added = 0
        cell_widths = []
        for col, width in enumerate(text_widths):
            if col < count - 1:
                step = int(c_round(extra / count * (col + 1), 0)) - added
            else:
                step = extra - added
            added += step
            cell_widths.append(width + step)
        return cell_widths

    @staticmethod
    def _rule_line(row: _Row, previous, cell_widths: List[int], char: str) -> str:
        parts = ["|"]
        last = row.layout.columns - 1
        for col, width in enumerate(cell_widths):
            parts.append(char * width)
            if col == last:
                continue
            rule = row.layout.rules[col]
            above = previous.layout.rules[col] if previous and col < previous.layout.columns else ""
            # a vertical rule crossing a '-' line becomes '+' where the row above has it too
            parts.append("+" if rule == "|" and char == "-" and above == "|" else char)
        parts.append("|")
        return "".join(parts)

    @staticmethod
    def _value_line(row: _Row, text_widths: List[int], cell_widths: List[int]) -> str:
        parts = ["|"]
        last = row.layout.columns - 1
        for col, cell in enumerate(row.cells):
            slack = cell_widths[col] - text_widths[col]
            text = center(cell, text_widths[col]) if row.layout.justify[col] == "c" else pad_right(
                cell, text_widths[col]
            )
            parts.append(" " * (slack // 2) + text + " " * (slack - slack // 2))
            if col != last:
                parts.append(row.layout.rules[col])
        parts.append("|")
        return "".join(parts)
