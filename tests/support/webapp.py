"""What the web app shows of the events it receives (apps/web chat-store's handling of
``stream_start``, ``stream_chunk``, ``stream_end``, ``stream_error`` and ``sync_response``),
so a test can check the reply a user would read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Bubble:
    id: str
    content: str
    status: str


@dataclass
class WebAppView:
    """One tab's messages of one conversation."""

    conversation_id: str
    bubbles: list[Bubble] = field(default_factory=list)

    def apply(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if event.get("conversationId", self.conversation_id) != self.conversation_id:
            return
        if kind == "stream_start":
            # a new bubble on every stream_start
            self.bubbles.append(Bubble(event["messageId"], "", "streaming"))
        elif kind == "stream_chunk":
            # the chunk goes to every bubble with that id
            for bubble in self.bubbles:
                if bubble.id == event["messageId"]:
                    bubble.content += event["chunk"]
        elif kind == "stream_end":
            for bubble in self.bubbles:
                if bubble.id == event["messageId"]:
                    bubble.status = "completed"
        elif kind == "stream_error":
            for bubble in self.bubbles:
                if bubble.id == event["messageId"]:
                    bubble.content, bubble.status = event["error"], "error"
        elif kind == "sync_response":
            known = {bubble.id for bubble in self.bubbles}
            for message in event["missedMessages"]:
                if message["conversationId"] == self.conversation_id and message["id"] not in known:
                    self.bubbles.append(
                        Bubble(message["id"], message["content"], message["status"])
                    )

    def texts_of(self, message_id: str) -> list[str]:
        return [bubble.content for bubble in self.bubbles if bubble.id == message_id]
