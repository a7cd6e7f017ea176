"""Supervised fine-tuning with a LoRA adapter through TRL's SFTTrainer (loss on the completion only)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SFTSettings:
    base: Path
    data: Path
    output: Path
    max_steps: int = 60
    lora_r: int = 16
    lora_alpha: int | None = None  # defaults to 2r
    learning_rate: float = 3e-3
    batch_size: int = 16
    max_length: int = 128
    seed: int = 0


def _prompt_completion(row: dict) -> dict:
    prompt = f"{row['instruction']}\n\n{row['input']}" if row.get("input") else row["instruction"]
    return {"prompt": [{"role": "user", "content": prompt}],
            "completion": [{"role": "assistant", "content": row["output"]}]}


def train_sft(settings: SFTSettings) -> Path:
    """Train a LoRA adapter on instruction data and save it (safetensors) into settings.output."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    rows = [json.loads(line) for line in Path(settings.data).read_text(encoding="utf-8").splitlines() if line.strip()]
    dataset = Dataset.from_list([_prompt_completion(r) for r in rows])
    torch.manual_seed(settings.seed)
    tokenizer = AutoTokenizer.from_pretrained(settings.base)
    model = AutoModelForCausalLM.from_pretrained(settings.base, dtype=torch.float32)
    lora = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha or 2 * settings.lora_r,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    args = SFTConfig(output_dir=str(Path(settings.output) / "checkpoints"), max_steps=settings.max_steps,
                     per_device_train_batch_size=settings.batch_size, learning_rate=settings.learning_rate,
                     lr_scheduler_type="cosine", warmup_steps=max(1, settings.max_steps // 10), logging_steps=10,
                     save_strategy="no", report_to=[], use_cpu=True, bf16=False, seed=settings.seed,
                     max_length=settings.max_length)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora)
    trainer.train()
    trainer.model.save_pretrained(settings.output, safe_serialization=True)
    return Path(settings.output)
