"""segengine: an in-process, stateful rule engine for live-stream e-commerce audience targeting."""

from .schema.batch import Batch, Coded
from .engine import Engine
from .errors import ConcurrentUseError, Diagnostic, EventError, RulesError, SegengineError, SnapshotError
from .schema.events import Action, Event
from .schema.results import Outcomes, RoomMetrics

__all__ = ["Engine", "Event", "Action", "Batch", "Coded", "EventError", "RulesError", "SnapshotError", "SegengineError", "Diagnostic",
           "ConcurrentUseError", "RoomMetrics", "Outcomes"]
__version__ = "0.1.0.dev0"
