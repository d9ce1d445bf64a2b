"""Real experience boundaries on Avalanche's online streams.

``split_online_stream`` cuts every experience into sub-experiences of a few samples
(``OnlineCLExperience``: ``is_first_subexp``, ``sub_stream_length``, ``origin_experience``).
Growth and protection act per *real* experience: the plugins grow at most once per original
experience and update the protection at its end, so an online stream costs and grows as the
offline one does. An experience starts at ``is_first_subexp`` and ends with the
``sub_stream_length``-th sub-experience from there (Avalanche 0.6.0 leaves ``is_last_subexp``
False when the sub-experience size divides the experience, so it is not relied on). An ordinary
experience starts and ends at once.
"""

from __future__ import annotations


def real_experience(experience):
    """The experience ``experience`` was cut from on an online stream; else itself."""
    return getattr(experience, "origin_experience", None) or experience


class ExperienceSpan:
    """Where the current (sub-)experience lies in its real experience."""

    def __init__(self):
        self.index = 0     # sub-experiences of the real experience before the current one
        self.length = 1    # sub-experiences in the real experience

    def enter(self, experience) -> None:
        """Call at every ``before_training_exp`` with ``strategy.experience``."""
        first = getattr(experience, "is_first_subexp", None)
        length = getattr(experience, "sub_stream_length", None)
        if first is None or not length:
            self.index, self.length = 0, 1
        elif first:
            self.index, self.length = 0, int(length)
        else:
            self.index += 1

    @property
    def starts(self) -> bool:
        return self.index == 0

    @property
    def ends(self) -> bool:
        return self.index >= self.length - 1
