"""Bridge state: the ARI Bridge model."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pbx_service.simulator.channels import CommandQueue
from pbx_service.simulator.events import timestamp

if TYPE_CHECKING:
    from pbx_service.simulator.channels import Channel
    from pbx_service.simulator.media import LiveRecording, Playback

BRIDGE_TYPES = {"mixing", "holding", "dtmf_events", "proxy_media", "video_sfu", "video_single"}


class Bridge:
    """One Stasis bridge."""

    def __init__(self, bridge_id: str, bridge_type: str, name: str, creator_app: str) -> None:
        self.id = bridge_id
        self.bridge_type = "holding" if "holding" in bridge_type else "mixing"
        self.name = name
        self.creationtime = timestamp(time.time())
        self.channels: list[Channel] = []
        # Subscriptions are counted: addChannel adds one, removeChannel takes one away,
        # a hangup does not (traces 09, 12 vs 03, 16: who gets BridgeDestroyed).
        self.app_refs: dict[str, int] = {creator_app: 1} if creator_app else {}
        self.moh_class: str | None = None
        self.announcer_channel: Channel | None = None
        self.recording: LiveRecording | None = None
        self.playbacks: list[Playback] = []
        self.destroyed = False
        self.announcer_name = ""
        # ChannelLeftBridge shows the technology from before the channel left (trace 03).
        self.technology_override: str | None = None
        self.recorder_name = ""
        self.control = CommandQueue(f"sim-bridge-{bridge_id}")

    @property
    def apps(self) -> set[str]:
        return {app for app, count in self.app_refs.items() if count > 0}

    def subscribe(self, app: str) -> None:
        if app:
            self.app_refs[app] = self.app_refs.get(app, 0) + 1

    def unsubscribe(self, app: str, *, everything: bool = False) -> None:
        if app in self.app_refs:
            self.app_refs[app] = 0 if everything else self.app_refs[app] - 1

    @property
    def technology(self) -> str:
        """softmix above two participants (Announcer and Recorder channels count)."""
        if self.bridge_type == "holding":
            return "holding_bridge"
        if self.technology_override is not None:
            return self.technology_override
        count = (
            len(self.channels) + int(self.moh_class is not None) + int(self.recording is not None)
        )
        return "softmix" if count > 2 else "simple_bridge"

    def to_json(self) -> dict[str, Any]:
        """The ARI Bridge model."""
        return {
            "id": self.id,
            "technology": self.technology,
            "bridge_type": self.bridge_type,
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": self.name,
            "channels": [channel.id for channel in self.channels],
            "creationtime": self.creationtime,
            "video_mode": "talker",
        }
