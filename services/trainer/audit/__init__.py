"""The dataset audit: per-class profiles, unreadable files, exact and near copies of one photo
(label conflicts among them), and shortcut warnings. Heavy (OpenCV, scikit-learn): import it
only where an audit runs."""

from services.trainer.audit.audit import audit_dataset
from services.trainer.audit.copies import find_copy_groups

__all__ = ["audit_dataset", "find_copy_groups"]
