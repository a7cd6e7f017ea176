"""Every validation step's weights kept as a checkpoint of its own (`save_checkpoints`), so a training run's
checkpoints can be ranked afterwards by win rate: `evalhub arena OUTPUT/checkpoint-*`.

The Trainer's own checkpoints keep only the best step by the selection metric (save_total_limit=1, deleted once
the best weights are restored); these are written beside the kept adapter as ordinary adapters of the same base
(adapter_config.json and adapter_model.safetensors, what `compare` and `arena` read), one folder per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transformers import TrainerCallback

PREFIX = "checkpoint-"


@dataclass
class KeepEvaluatedCheckpoints(TrainerCallback):
    """Save the model at each evaluation after step 0 into `folder`/checkpoint-STEP."""

    folder: Path

    def on_evaluate(self, args, state, control, model=None, processing_class=None, **kwargs):
        step = state.global_step
        if step == 0 or model is None:
            return
        target = Path(self.folder) / f"{PREFIX}{step}"
        model.save_pretrained(target)
        (target / "README.md").unlink(missing_ok=True)  # peft's empty model card
        if not hasattr(model, "peft_config") and processing_class is not None:
            processing_class.save_pretrained(target)  # a full fine-tune's checkpoint is a model of its own


def saved_checkpoints(output: Path) -> list[Path]:
    """The kept checkpoints of a training output, in step order."""
    found = [p for p in Path(output).glob(f"{PREFIX}*") if p.is_dir() and p.name[len(PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))
