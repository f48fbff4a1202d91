"""The training engine shared by every task: Trainer loop, schedules, checkpoints (resume, safe
loading), metrics (CSV, TensorBoard), progress (tqdm), torch.distributed. Knows no task."""
from .checkpoint import UnsafeCheckpointError, load_checkpoint, save_checkpoint
from .config import TrainingConfig
from .context import RunContext
from .distributed import Distributed
from .errors import TrainingError, TrainingInterrupted
from .task import AuxiliaryStep, StepOutput, Task
from .trainer import Trainer

__all__ = ["Trainer", "Task", "StepOutput", "AuxiliaryStep", "TrainingConfig", "RunContext", "Distributed",
           "TrainingError", "TrainingInterrupted", "load_checkpoint", "save_checkpoint", "UnsafeCheckpointError"]
