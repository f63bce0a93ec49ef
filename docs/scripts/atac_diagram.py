"""Draws the ATAC unit for the documentation: docs/images/atac_unit.svg.

    python docs/scripts/atac_diagram.py

The gate branch (two pointwise maps with BatchNorms, ReLU between, sigmoid after) computes one
value per element of X from the channels at the same position; the output is X times the gate.
"""

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import patches  # noqa: E402

OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "images" / "atac_unit.svg"

# (label, sublabel, face colour) of the boxes of the gate branch, left to right.
GATE = (
    ("1×1 conv", "C → C/r", "#c5cae9"),
    ("BN", "", "#e0e0e0"),
    ("ReLU", "", "#ffe0b2"),
    ("1×1 conv", "C/r → C", "#c5cae9"),
    ("BN", "", "#e0e0e0"),
    ("sigmoid", "", "#ffe0b2"),
)
BOX_WIDTH, BOX_HEIGHT, GAP = 1.45, 0.8, 0.4
GATE_Y, SKIP_Y = 0.0, 1.35


def box(axes, x, y, label, sublabel, color):
    axes.add_patch(
        patches.FancyBboxPatch(
            (x, y - BOX_HEIGHT / 2),
            BOX_WIDTH,
            BOX_HEIGHT,
            boxstyle="round,pad=0.02,rounding_size=0.12",
            facecolor=color,
            edgecolor="#37474f",
            linewidth=1.2,
        )
    )
    axes.text(
        x + BOX_WIDTH / 2,
        y + (0.1 if sublabel else 0),
        label,
        ha="center",
        va="center",
        fontsize=11,
    )
    if sublabel:
        axes.text(
            x + BOX_WIDTH / 2,
            y - 0.2,
            sublabel,
            ha="center",
            va="center",
            fontsize=8.5,
            color="#455a64",
        )


def arrow(axes, start, end):
    axes.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={
            "arrowstyle": "-|>",
            "color": "#37474f",
            "linewidth": 1.3,
            "shrinkA": 0,
            "shrinkB": 0,
        },
    )


def main():
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "keras_atac"})
    figure, axes = plt.subplots(figsize=(11, 2.9))
    input_x = 0.0
    axes.text(input_x, SKIP_Y, "X", ha="center", va="center", fontsize=15, fontweight="bold")
    axes.text(
        input_x, SKIP_Y - 0.38, "N×H×W×C", ha="center", va="center", fontsize=8, color="#455a64"
    )
    # Gate branch.
    x = 0.9
    arrow(axes, (input_x, SKIP_Y - 0.55), (input_x, GATE_Y))
    arrow(axes, (input_x, GATE_Y), (x, GATE_Y))
    for index, (label, sublabel, color) in enumerate(GATE):
        box(axes, x, GATE_Y, label, sublabel, color)
        if index < len(GATE) - 1:
            arrow(axes, (x + BOX_WIDTH, GATE_Y), (x + BOX_WIDTH + GAP, GATE_Y))
        x += BOX_WIDTH + GAP
    gate_end = x - GAP
    # Product with the input, and the output.
    product_x = gate_end + 0.75
    axes.add_patch(
        patches.Circle(
            (product_x, SKIP_Y), 0.22, facecolor="white", edgecolor="#37474f", linewidth=1.3
        )
    )
    axes.text(product_x, SKIP_Y, "×", ha="center", va="center", fontsize=15)
    arrow(axes, (gate_end, GATE_Y), (product_x, GATE_Y))
    arrow(axes, (product_x, GATE_Y), (product_x, SKIP_Y - 0.22))
    arrow(axes, (input_x + 0.3, SKIP_Y), (product_x - 0.22, SKIP_Y))
    arrow(axes, (product_x + 0.22, SKIP_Y), (product_x + 0.9, SKIP_Y))
    axes.text(product_x + 1.05, SKIP_Y, "X ⊙ G(X)", ha="left", va="center", fontsize=13)
    axes.text(
        (0.9 + gate_end) / 2,
        GATE_Y - 0.75,
        "G(X): one gate value in (0, 1) per element, from the C channels at its position",
        ha="center",
        va="center",
        fontsize=9.5,
        style="italic",
        color="#455a64",
    )
    axes.set_xlim(-0.5, product_x + 2.6)
    axes.set_ylim(-1.05, 1.8)
    axes.set_aspect("equal")
    axes.axis("off")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(OUTPUT, bbox_inches="tight", metadata={"Date": None})
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
