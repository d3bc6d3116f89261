"""Witness mode: the members. Simultaneous presentation shows them all in a grid;
sequential presentation shows one at a time, sliding in like a swiped card, and
the witness answers yes or no about each before the next is shown.

Every tile is made the same way (``MemberTile.of``): its position and its photo.
"""

from __future__ import annotations

from typing import Any

from kivy.animation import Animation
from kivy.metrics import dp
from kivy.uix.stencilview import StencilView

from mobile.screens.witness import MemberTile, WitnessScreen
from mobile.services.witness import WitnessView

PHOTO_TILE = dp(220)
NUMBER_TILE = dp(110)
SLIDE_SECONDS = 0.3


class MemberStage(StencilView):
    """Where the one member of sequential presentation is shown; what slides out of it
    is cut off at its edges."""


class WitnessLineupScreen(WitnessScreen):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: tuple[int, ...] = ()

    @property
    def sequential(self) -> bool:
        return self.view.presentation == "sequential"

    def shown(self, view: WitnessView) -> None:
        positions = tuple(m.position for m in view.members)
        if positions == self._shown:
            return
        self._shown = positions
        self._arrange()
        if self.sequential:
            self._slide_in(view)
        else:
            self._fill_grid(view)

    def _arrange(self) -> None:
        """The grid for simultaneous presentation, the stage for sequential: the other one
        takes no room."""
        shown, hidden = (
            (self.ids.stage, self.ids.gallery)
            if self.sequential
            else (self.ids.gallery, self.ids.stage)
        )
        shown.size_hint_y, shown.opacity = 1, 1
        hidden.size_hint_y, hidden.height, hidden.opacity = None, 0, 0

    def _fill_grid(self, view: WitnessView) -> None:
        grid = self.ids.grid
        grid.clear_widgets()
        self.ids.stage.clear_widgets()
        height = PHOTO_TILE if any(m.image for m in view.members) else NUMBER_TILE
        for member in view.members:
            grid.add_widget(MemberTile.of(member, size_hint_y=None, height=height))

    def _slide_in(self, view: WitnessView) -> None:
        """The next member slides in from the right like a swiped card, pushing out the one
        answered; there is no going back to it."""
        self.ids.grid.clear_widgets()
        stage = self.ids.stage
        for old in list(stage.children):
            leaving = Animation(x=stage.x - stage.width, duration=SLIDE_SECONDS)
            leaving.bind(on_complete=lambda _a, tile: stage.remove_widget(tile))
            leaving.start(old)
        for member in view.members:
            entering = bool(stage.children)
            tile = MemberTile.of(member, size_hint=(None, None), size=stage.size)
            tile.pos = (stage.right if entering else stage.x, stage.y)
            stage.add_widget(tile)
            Animation(x=stage.x, duration=SLIDE_SECONDS).start(tile)

    def place_stage(self, stage: Any) -> None:
        """Keep the member shown filling the stage when the window is laid out again."""
        for tile in stage.children:
            tile.size = stage.size
            tile.pos = stage.pos

    def answer(self, answer: str) -> None:
        if self.view.members:
            self.call("answer", self.view.members[0].position, answer)

    def on_leave(self, *_args: Any) -> None:
        self._shown = ()
        self.ids.stage.clear_widgets()
