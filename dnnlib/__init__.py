"""Plumbing shared by every part of the framework, with no torch in it."""

from . import util
from . import progress
from .util import EasyDict
