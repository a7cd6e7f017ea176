"""`evalhub serve BASE --adapter NAME=PATH ...`: vLLM's OpenAI-compatible server for a base and its adapters.

The server runs as a child process (vLLM's own log goes to stderr). Once it answers GET /v1/models, stdout
gets the base URL and the served names, one `key: value` a line, for people and scripts:

    base_url: http://127.0.0.1:8000/v1
    base: BASE
    adapter: NAME

It then serves until interrupted (Ctrl-C or SIGTERM, passed on to the server).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

from evalhub.cli._app import app
from evalhub.errors import UserError


@app.command("serve")
def serve(
    base: str = typer.Argument(..., help="Base model folder or hub id."),
    adapter: List[str] = typer.Option([], "--adapter", help="NAME=PATH of a LoRA adapter to serve as NAME; repeatable."),
    name: Optional[str] = typer.Option(None, help="Name to serve the base as (default: BASE as given)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 exposes the server to the network."),
    port: int = typer.Option(8000, help="Port to listen on; 0 picks a free one."),
    dtype: str = typer.Option("auto", help="Weights dtype; auto keeps the checkpoint's."),
    max_model_len: Optional[int] = typer.Option(None, help="Context length (default: the model's)."),
    gpu_memory_utilization: Optional[float] = typer.Option(None, help="Share of GPU memory (of RAM on CPU)."),
    kv_cache_gib: Optional[float] = typer.Option(None, help="KV-cache size in GiB instead of a memory share."),
    tensor_parallel_size: int = typer.Option(1, help="GPUs per model."),
    pipeline_parallel_size: int = typer.Option(1, help="Pipeline stages (nodes or GPU groups)."),
    distributed_executor_backend: Optional[str] = typer.Option(None, help="ray (across nodes) or mp."),
    enforce_eager: bool = typer.Option(False, help="Skip graph compilation: starts faster, serves slower."),
    start_timeout: float = typer.Option(900, help="Seconds to wait for the server to come up."),
) -> None:
    """Serve BASE and its LoRA adapters through vLLM's OpenAI-compatible server."""
    from evalhub.generate import BackendOptions
    from evalhub.models import engine_args, inspect_model

    if inspect_model(base).kind == "adapter":
        raise UserError(f"{base} is a LoRA adapter; pass its base model and the adapter as --adapter NAME={base}")
    adapters = _parse_adapters(adapter)
    options = BackendOptions(dtype=dtype, max_model_len=max_model_len, gpu_memory_utilization=gpu_memory_utilization,
                             kv_cache_gib=kv_cache_gib, tensor_parallel_size=tensor_parallel_size,
                             pipeline_parallel_size=pipeline_parallel_size,
                             distributed_executor_backend=distributed_executor_backend, enforce_eager=enforce_eager)
    # Served requests need no prompt logprobs, so LoRA may reach every module an adapter names.
    args = engine_args(base, options.load_options(), list(adapters.values()), restrict_lora_modules=False)
    port = port or _free_port(host)
    served_base = name or base
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", *_flags(args),
               "--served-model-name", served_base, "--host", host, "--port", str(port)]
    if adapters:
        command += ["--lora-modules", *(f"{n}={p}" for n, p in adapters.items())]
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/v1"
    print(f"starting vLLM's server for {base} on {url}", file=sys.stderr)
    server = subprocess.Popen(command, stdout=sys.stderr, stderr=sys.stderr)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.terminate())
    try:
        _wait_until_ready(server, url, start_timeout)
        print(f"base_url: {url}\nbase: {served_base}", flush=True)
        for adapter_name in adapters:
            print(f"adapter: {adapter_name}", flush=True)
        print("serving; Ctrl-C stops the server", file=sys.stderr)
        code = server.wait()
    finally:
        _stop(server)
    raise typer.Exit(0 if code in (0, -signal.SIGTERM, -signal.SIGINT) else code)


def _parse_adapters(specs: list[str]) -> dict[str, str]:
    from evalhub.models import inspect_model

    adapters: dict[str, str] = {}
    for spec in specs:
        adapter_name, sep, path = spec.partition("=")
        if not sep or not adapter_name.strip() or not path.strip():
            raise UserError(f"--adapter {spec!r}: write it as NAME=PATH, e.g. --adapter zorvish=out/adapter")
        if adapter_name in adapters:
            raise UserError(f"--adapter {adapter_name!r} is given twice; give each adapter its own name")
        if inspect_model(path).kind != "adapter":
            raise UserError(f"--adapter {spec}: {path} has no adapter_config.json; pass a LoRA adapter folder")
        adapters[adapter_name] = str(Path(path).expanduser().resolve())
    return adapters


def _flags(args: dict) -> list[str]:
    """vllm.LLM keyword arguments as the server's command-line flags."""
    flags: list[str] = []
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif isinstance(value, (list, tuple)):
            flags += [flag, *map(str, value)]
        elif value is not None and value is not False:
            flags += [flag, str(value)]
    return flags


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _wait_until_ready(server: subprocess.Popen, url: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise UserError(f"vLLM's server exited (code {server.returncode}) before it was ready; its log is above")
        try:
            if httpx.get(f"{url}/models", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise UserError(f"vLLM's server did not come up within {timeout:.0f} s; raise --start-timeout or read its log above")


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
