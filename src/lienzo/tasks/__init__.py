from .classify import ClassifyTask

__all__ = ["ClassifyTask"]
