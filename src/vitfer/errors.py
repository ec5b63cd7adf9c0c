"""``VitferError``: the base of every error that means bad input or a request vitfer cannot carry out.

The command line prints such an error as one line naming the input and exits with status 2; anything else
is a bug and keeps its traceback. Each package defines its own subclasses (DataError, CheckpointError, ...),
which also stay ValueErrors (RuntimeErrors for detectors and weights) for callers that catch those.
"""


class VitferError(Exception):
    """Bad input or an impossible request; the message names the input."""
