"""PhysioNet/CinC Challenge 2012 ICU records (the latent-ODE paper's PhysioNet experiments).

One text file per ICU stay (set-a/132539.txt, ...), header `Time,Parameter,Value`, times `HH:MM`
since admission over the first 48 h; the descriptors (RecordID, Age, Gender, Height, ICUType,
Weight) come at 00:00 with -1 marking a missing descriptor. `Outcomes-a.txt` has one row per
record, `RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death`.

As in Rubanova et al. (2019): the 41 variables below, times in hours rounded to a multiple of
`quantization` (several values of a variable in one bin are averaged), masks for the rest.
Parameters outside the list are skipped. Normalise with data.irregular.Normalizer.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch

from .file_checks import refuse_folder
from .irregular import Series

DESCRIPTORS = ("Age", "Gender", "Height", "ICUType", "Weight")
VARIABLES = DESCRIPTORS + (
    "Albumin",
    "ALP",
    "ALT",
    "AST",
    "Bilirubin",
    "BUN",
    "Cholesterol",
    "Creatinine",
    "DiasABP",
    "FiO2",
    "GCS",
    "Glucose",
    "HCO3",
    "HCT",
    "HR",
    "K",
    "Lactate",
    "Mg",
    "MAP",
    "MechVent",
    "Na",
    "NIDiasABP",
    "NIMAP",
    "NISysABP",
    "PaCO2",
    "PaO2",
    "pH",
    "Platelets",
    "RespRate",
    "SaO2",
    "SysABP",
    "Temp",
    "TroponinI",
    "TroponinT",
    "Urine",
    "WBC",
)
WHERE = (
    "the PhysioNet 2012 challenge files (set-a.tar.gz, Outcomes-a.txt) from "
    "https://physionet.org/content/challenge-2012/1.0.0/, unpacked into that directory"
)
_TIME = re.compile(r"^(\d{1,3}):(\d{2})$")


def parse_record(
    path: Path, quantization: Optional[float] = 0.1
) -> Tuple[str, List[float], torch.Tensor, torch.Tensor]:
    """(record id, times in hours, values [n, 41], mask [n, 41]) of one record file (float64)."""
    col = {v: j for j, v in enumerate(VARIABLES)}
    sums: Dict[float, List[float]] = {}
    counts: Dict[float, List[float]] = {}
    record_id = path.stem
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        if header != ["Time", "Parameter", "Value"]:
            raise ValueError(f"{path}: header is {header}; a PhysioNet 2012 record starts with 'Time,Parameter,Value'")
        for line, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != 3:
                raise ValueError(f"{path}, line {line}: {len(row)} fields, expected 3 (Time,Parameter,Value)")
            t_text, name, v_text = (c.strip() for c in row)
            m = _TIME.match(t_text)
            if m is None or int(m.group(2)) >= 60:
                raise ValueError(f"{path}, line {line}: time {t_text!r} is not HH:MM")
            try:
                value = float(v_text)
            except ValueError:
                raise ValueError(f"{path}, line {line}: value {v_text!r} of {name} is not a number") from None
            if name == "RecordID":
                record_id = str(int(value)) if math.isfinite(value) and value == int(value) else v_text
                continue
            if name not in col or not math.isfinite(value) or (name in DESCRIPTORS and value < 0):
                continue  # unknown parameter, or -1 for a missing descriptor
            t = int(m.group(1)) + int(m.group(2)) / 60.0
            if quantization:
                t = round(round(t / quantization) * quantization, 10)
            if t not in sums:
                sums[t], counts[t] = [0.0] * len(VARIABLES), [0.0] * len(VARIABLES)
            sums[t][col[name]] += value
            counts[t][col[name]] += 1.0
    times = sorted(sums)
    s = torch.tensor([sums[t] for t in times], dtype=torch.float64).reshape(len(times), len(VARIABLES))
    c = torch.tensor([counts[t] for t in times], dtype=torch.float64).reshape(len(times), len(VARIABLES))
    mask = (c > 0).to(torch.float64)
    return record_id, times, s / c.clamp(min=1), mask


def read_outcomes(path: Path) -> Dict[str, float]:
    """RecordID -> In-hospital_death (0/1) from Outcomes-a.txt."""
    refuse_folder(path, "outcomes file", "it is Outcomes-a.txt of " + WHERE)
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        if "RecordID" not in header or "In-hospital_death" not in header:
            raise ValueError(f"{path}: header {header} lacks RecordID and In-hospital_death")
        i, j = header.index("RecordID"), header.index("In-hospital_death")
        out = {}
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                out[str(int(float(row[i])))] = float(row[j])
            except (ValueError, IndexError):
                raise ValueError(f"{path}, line {line}: cannot read RecordID / In-hospital_death from {row}") from None
    return out


def load_physionet(
    directory: Union[str, Path],
    quantization: Optional[float] = 0.1,
    outcomes: Optional[Union[str, Path]] = None,
    max_records: Optional[int] = None,
    dtype: torch.dtype = torch.float32,
) -> Tuple[List[Series], List[str]]:
    """Records of `directory` (or of its set-a/ folder), labels from Outcomes-a.txt when found
    (next to the records or one level up, or at `outcomes`); times in hours."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"PhysioNet directory {directory} does not exist; put {WHERE}")
    folder = directory / "set-a" if (directory / "set-a").is_dir() else directory
    files = sorted(folder.glob("*.txt"))
    files = [f for f in files if not f.name.lower().startswith("outcomes")]
    if not files:
        raise FileNotFoundError(f"no record files (*.txt) in {folder}; put {WHERE}")
    if quantization is not None and quantization <= 0:
        raise ValueError(f"quantization must be > 0 hours (or None); got {quantization}")
    if outcomes is None:
        found = [
            p
            for p in (folder / "Outcomes-a.txt", directory / "Outcomes-a.txt", directory.parent / "Outcomes-a.txt")
            if p.is_file()
        ]
        labels = read_outcomes(found[0]) if found else {}
    else:
        if not Path(outcomes).is_file():
            raise FileNotFoundError(f"outcomes file {outcomes} does not exist; it is Outcomes-a.txt of {WHERE}")
        labels = read_outcomes(Path(outcomes))
    series: List[Series] = []
    for f in files[:max_records]:
        rid, times, values, mask = parse_record(f, quantization)
        if not times:
            continue  # a record with no usable measurement
        series.append(
            Series(
                torch.tensor(times, dtype=torch.float64).to(dtype),
                values.to(dtype),
                mask.to(dtype),
                label=labels.get(rid),
                name=rid,
            )
        )
    return series, list(VARIABLES)
