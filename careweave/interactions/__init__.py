"""Transport-free FHIR interactions: a :class:`Request` in, a :class:`Result` out.

HTTP (rest/), MLLP (gateway/) and the UI only translate to and from these types.
"""

from careweave.interactions.request import Request
from careweave.interactions.result import Result

__all__ = ["Request", "Result"]
