"""Synthetic ICU records in the exact PhysioNet 2012 file format (set-a/<RecordID>.txt and
Outcomes-a.txt), for running the PhysioNet path of the latent-ODE task where the challenge
files are not available (they are not shipped here and never downloaded).

The values are NOT real patients. Each stay has a 3-dimensional latent physiological state
s(t) over 48 h following a slowly damped linear ODE  ds/dt = A s  (A = -diag(decay), decay
~ U[0.005, 0.03] per hour, + a random
rotation, per patient), so the series have smooth, partly oscillating, patient-specific
dynamics; each of the 36 time-varying variables is  mean_v + std_v · (W_v · s(t) + 0.3 ε)
with one fixed loading matrix W for the whole data set, rounded like the real files.
Sampling mimics the real records: vital signs (HR, MAP, ...) roughly hourly at jittered
minutes with some gaps, laboratory values every 6-24 h, urine output every 1-3 h,
descriptors at 00:00 (-1 for a missing Height/Weight); In-hospital_death is drawn from a
logistic model of s at 48 h. Per record that gives ~300-450 rows and ~50-60 distinct
measurement times, the order of magnitude of the real set-a records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

from .physionet import DESCRIPTORS, VARIABLES

# (mean, std, decimals) of the time-varying variables, realistic orders of magnitude.
_SCALE = {
    "Albumin": (2.9, 0.6, 1),
    "ALP": (115, 60, 0),
    "ALT": (150, 250, 0),
    "AST": (190, 300, 0),
    "Bilirubin": (2.5, 3.0, 1),
    "BUN": (27, 18, 0),
    "Cholesterol": (155, 45, 0),
    "Creatinine": (1.5, 1.2, 1),
    "DiasABP": (59, 12, 0),
    "FiO2": (0.55, 0.15, 2),
    "GCS": (11, 3.5, 0),
    "Glucose": (140, 50, 0),
    "HCO3": (23, 4.5, 0),
    "HCT": (30.5, 5, 1),
    "HR": (87, 17, 0),
    "K": (4.1, 0.6, 1),
    "Lactate": (2.9, 2.3, 1),
    "Mg": (2.0, 0.4, 1),
    "MAP": (80, 15, 0),
    "MechVent": (1, 0, 0),
    "Na": (139, 5, 0),
    "NIDiasABP": (58, 14, 0),
    "NIMAP": (77, 15, 0),
    "NISysABP": (119, 23, 0),
    "PaCO2": (40, 9, 0),
    "PaO2": (148, 85, 0),
    "pH": (7.39, 0.07, 2),
    "Platelets": (190, 105, 0),
    "RespRate": (19.6, 5.5, 0),
    "SaO2": (96.6, 3.5, 0),
    "SysABP": (119, 23, 0),
    "Temp": (37.0, 0.8, 1),
    "TroponinI": (7, 10, 1),
    "TroponinT": (1.1, 2.4, 2),
    "Urine": (120, 150, 0),
    "WBC": (12.5, 7, 1),
}
_VITALS = (
    "HR",
    "MAP",
    "SysABP",
    "DiasABP",
    "NIMAP",
    "NISysABP",
    "NIDiasABP",
    "RespRate",
    "Temp",
    "SaO2",
    "GCS",
    "FiO2",
    "MechVent",
)
_URINE = ("Urine",)
_LATENT = 3


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def write_synthetic_physionet(
    directory: Union[str, Path], n_records: int = 600, seed: int = 0, hours: int = 48
) -> Path:
    """Write `n_records` synthetic records to directory/set-a/ and directory/Outcomes-a.txt;
    returns `directory`. Deterministic for a given seed."""
    if n_records < 1:
        raise ValueError(f"n_records must be >= 1; got {n_records}")
    if hours < 2:
        raise ValueError(f"hours must be >= 2; got {hours}")
    directory = Path(directory)
    folder = directory / "set-a"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    timevarying = [v for v in VARIABLES if v not in DESCRIPTORS]
    loadings = rng.normal(size=(len(timevarying), _LATENT)) / np.sqrt(_LATENT)
    death_w = rng.normal(size=_LATENT)
    outcomes = ["RecordID,SAPS-I,SOFA,Length_of_stay,Survival,In-hospital_death"]
    grid = np.arange(0, hours * 60 + 1) / 60.0  # minutes, in hours
    for r in range(n_records):
        rid = 132539 + r
        decay = rng.uniform(0.005, 0.03, size=_LATENT)
        skew = rng.normal(scale=0.25, size=(_LATENT, _LATENT))
        a = -np.diag(decay) + (skew - skew.T) / 2
        evals, evecs = np.linalg.eig(a)
        s0 = rng.normal(scale=1.5, size=_LATENT)
        coef = np.linalg.solve(evecs, s0)
        states = np.real((evecs * coef) @ np.exp(np.outer(evals, grid)))  # [L, minutes]
        rows = [
            "Time,Parameter,Value",
            f"00:00,RecordID,{rid}",
            f"00:00,Age,{int(rng.integers(18, 91))}",
            f"00:00,Gender,{int(rng.integers(0, 2))}",
            f"00:00,Height,{-1 if rng.random() < 0.45 else round(float(rng.normal(170, 10)), 1)}",
            f"00:00,ICUType,{int(rng.integers(1, 5))}",
            f"00:00,Weight,{-1 if rng.random() < 0.1 else round(float(rng.normal(82, 22)), 1)}",
        ]
        events = []
        for j, name in enumerate(timevarying):
            if name in _VITALS:
                if rng.random() < 0.2 and name.startswith(("NI", "Sys", "Dias", "MAP")):
                    continue  # invasive or non-invasive pressure only, as in many stays
                t = np.arange(0, hours) * 60 + rng.integers(0, 45, size=hours)
                t = t[rng.random(hours) < 0.8]
            elif name in _URINE:
                t = np.cumsum(rng.integers(60, 181, size=hours))
            else:
                if rng.random() < 0.25:
                    continue  # a lab never measured in this stay
                t = np.cumsum(rng.integers(6 * 60, 24 * 60 + 1, size=8)) - rng.integers(0, 6 * 60)
            t = np.unique(t[(t >= 1) & (t <= hours * 60 - 1)])
            mean, std, dec = _SCALE[name]
            for m in t:
                if name == "MechVent":
                    value: float = 1.0
                else:
                    value = mean + std * (float(loadings[j] @ states[:, m]) + 0.3 * float(rng.normal()))
                    value = max(value, 0.0) if name != "pH" else value
                events.append((int(m), name, round(value, dec) if dec else int(round(value))))
        events.sort(key=lambda e: e[0])
        rows += [f"{_hhmm(m)},{name},{value}" for m, name, value in events]
        (folder / f"{rid}.txt").write_text("\n".join(rows) + "\n")
        logit = float(death_w @ states[:, -1]) - 1.8
        death = int(rng.random() < 1.0 / (1.0 + np.exp(-logit)))
        outcomes.append(
            f"{rid},{int(rng.integers(5, 25))},{int(rng.integers(0, 15))},{int(rng.integers(2, 30))},-1,{death}"
        )
    (directory / "Outcomes-a.txt").write_text("\n".join(outcomes) + "\n")
    return directory
