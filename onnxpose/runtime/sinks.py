"""Where predict's records go, shared by the local and the Ray engine: the JSONL (each record
written whole as it comes), Parquet (at the end), overlays, the progress bar, fault lines and
the summary."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field


@dataclass
class Summary:
    records: int = 0
    faults: int = 0
    skipped: int = 0
    seconds: float = 0.0
    fault_lines: list = field(default_factory=list)

    def line(self) -> str:
        rate = self.records / self.seconds if self.seconds > 0 else 0.0
        skipped = f", {self.skipped} already in the JSONL (--resume)" if self.skipped else ""
        return (f"onnxpose: {self.records} record(s), {self.faults} fault(s) skipped{skipped}; "
                f"{self.seconds:.1f} s, {rate:.1f} items/s")


class RecordSink:
    def __init__(self, options, sources, skipped: int = 0, log=None):
        from tqdm import tqdm

        from onnxpose.runtime.jsonl import JsonlWriter
        self.options = options
        self.summary = Summary(skipped=skipped)
        self.started = time.perf_counter()
        self.jsonl = JsonlWriter(options.jsonl) if options.jsonl is not None else None
        self.parquet = [] if options.parquet is not None else None
        self.overlays = None
        if options.out is not None:
            from onnxpose.runtime.overlays import Overlays
            self.overlays = Overlays(options.out, sources, options.min_score, options.every)
        total = None if any(s.kind == "video" for s in sources) else len(sources)
        if total is not None:
            total = max(0, total - self.summary.skipped)
        self.bar = tqdm(total=total, unit="item", disable=not options.progress, file=sys.stderr,
                        dynamic_ncols=True, smoothing=0.1)
        self.log = log or (lambda line: self.bar.write(line, file=sys.stderr))

    def record(self, record: dict, item=None, image=None, result=None) -> None:
        if self.jsonl is not None:
            self.jsonl.write(record)
        if self.parquet is not None:
            self.parquet.append(record)
        if self.overlays is not None and image is not None:
            self.overlays.add(item, image, result)
        self.summary.records += 1
        self.bar.update(1)

    def fault(self, fault) -> None:
        self.summary.faults += 1
        self.summary.fault_lines.append(fault.line())
        self.log(fault.line())
        if fault.frame is None:
            self.bar.update(1)

    def close(self, complete: bool = True) -> None:
        """Close the JSONL and the overlay video; write Parquet (only after a complete run)."""
        self.bar.close()
        try:
            if self.overlays is not None:
                self.overlays.finish()
        finally:
            if self.jsonl is not None:
                self.jsonl.close()
        if self.parquet is not None and complete:
            from onnxpose.runtime.jsonl import write_parquet
            write_parquet(self.options.parquet, self.parquet)
        self.summary.seconds = time.perf_counter() - self.started
