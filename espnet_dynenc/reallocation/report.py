"""What DMAO leaves in the experiment directory after each event.

- ``architecture.yaml``: the architecture now (``block_widths``, as ``encoder_conf`` takes
  it) and every event so far: update, parameters moved, groups dropped and copied, widths
  before and after, seconds spent;
- ``architecture_event<k>.png``: groups per block and module before and after event k
  (the paper's redistribution analysis);
- ``config.yaml``: ``encoder_conf.block_widths`` set to the architecture now, so that
  decoding and ``build_model_from_file`` build the right shapes.

Files are written under a temporary name and renamed.
"""
from pathlib import Path
from typing import List, Mapping, Sequence

import yaml

from espnet_dynenc.atomic_files import replace_atomically, write_text_atomically


def write_architecture_yaml(out_dir: Path, block_widths: Sequence[Mapping[str, int]], events: List[dict]) -> Path:
    document = {"block_widths": [dict(widths) for widths in block_widths], "events": events}
    path = Path(out_dir) / "architecture.yaml"
    write_text_atomically(path, yaml.safe_dump(document, sort_keys=False))
    return path


def update_config_widths(config_yaml: Path, block_widths: Sequence[Mapping[str, int]]) -> bool:
    """Set ``encoder_conf.block_widths`` in ESPnet's config.yaml; False when there is none."""
    config_yaml = Path(config_yaml)
    if not config_yaml.is_file():
        return False
    config = yaml.safe_load(config_yaml.read_text(encoding="utf-8")) or {}
    config.setdefault("encoder_conf", {})["block_widths"] = [dict(widths) for widths in block_widths]
    write_text_atomically(config_yaml, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return True


def plot_event(path: Path, event: Mapping, group_sizes: Mapping[str, int]) -> Path:
    """Bars of groups per module (one panel per module) for every block, before and after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before, after = event["widths_before"], event["widths_after"]
    names = list(before[0])
    blocks = range(len(before))
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.0), sharey=False, squeeze=False)
    for ax, name in zip(axes[0], names):
        size = group_sizes[name]
        ax.bar([b - 0.2 for b in blocks], [w[name] / size for w in before], width=0.4, label="before", color="#bbbbbb")
        ax.bar([b + 0.2 for b in blocks], [w[name] / size for w in after], width=0.4, label="after", color="#1f77b4")
        ax.set_title(name)
        ax.set_xlabel("block")
        ax.set_xticks(list(blocks))
    axes[0][0].set_ylabel("groups")
    axes[0][0].legend()
    fig.suptitle(f"DMAO event at update {event['update']}: rho {event['rho']}, "
                 f"{event['removed_params']} parameters moved")
    fig.tight_layout()
    replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path
