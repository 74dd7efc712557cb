"""The flows' parameter types that Prefect's UI renders as a choice (a dropdown), refusing any other value
before the run starts. What each parameter means is in the flow's docstring (its Args: the UI shows them)."""

from __future__ import annotations

from typing import Literal

# pause: this run waits for a human's answer in its Resume form; refuse: a step that needs a human is not
# taken. yes and prompt are the command line's (recover --yes, its y/N question); a deployment's run refuses them.
ApprovalMode = Literal["pause", "refuse", "yes", "prompt"]
