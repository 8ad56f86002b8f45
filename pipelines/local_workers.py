"""How many processes a local Beam run uses: Beam's DirectRunner runs one worker unless told."""

from __future__ import annotations

import os

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

# Below this much input a second process costs more (its start, the graph sent to it) than it saves.
PARALLEL_INPUT_BYTES = 64 << 20
DIRECT = (None, "DirectRunner", "direct", "directrunner")


def with_local_workers(beam_args: list[str], input_bytes: int, cores: int | None = None) -> list[str]:
    """`beam_args`, plus one worker process per core when the run is local, large and its
    parallelism was left to us: a user's --direct_num_workers or another runner is kept as given."""
    cores = cores or os.cpu_count() or 1
    runner = PipelineOptions(beam_args).view_as(StandardOptions).runner
    told = any(a.startswith(("--direct_num_workers", "--direct_running_mode")) for a in beam_args)
    if runner not in DIRECT or told or cores < 2 or input_bytes < PARALLEL_INPUT_BYTES:
        return list(beam_args)
    return [*beam_args, f"--direct_num_workers={cores}", "--direct_running_mode=multi_processing"]
