"""The simulator: write to the bot as a young person, through the same engine and outbox.

Anyone who can reach these routes can write as any young person, so they exist only when the
simulator is switched on (by default only in development).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from bot.conversations import UnknownYoungPerson
from bot.runtime import Runtime
from bot.web.pages import Pages
from dialogs.types import Channel, Direction
from storage.models import Message, YoungPerson

MAX_TEXT = 1600  # what an SMS webhook can carry


class SimulatedText(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class SimulatedMessage(BaseModel):
    id: int
    direction: Direction
    text: str
    at: datetime


class Replies(BaseModel):
    replies: list[SimulatedMessage]


class Thread(BaseModel):
    messages: list[SimulatedMessage]


def _public(message: Message) -> SimulatedMessage:
    return SimulatedMessage(
        id=message.id, direction=message.direction, text=message.text or "", at=message.created_at
    )


def router(runtime: Runtime, pages: Pages) -> APIRouter:
    routes = APIRouter()

    def _person_exists(young_person_id: int) -> YoungPerson:
        with runtime.database.session() as session:
            person = session.get(YoungPerson, young_person_id)
            if person is None:
                raise HTTPException(404, "unknown young person")
            return person

    @routes.post("/api/simulator/{young_person_id}/messages")
    def post_message(young_person_id: int, body: SimulatedText) -> Replies:
        """Write as the young person; the answer holds the bot's replies, already delivered."""
        try:
            sent = runtime.conversations.receive(
                young_person_id=young_person_id, channel=Channel.SIMULATOR, text=body.text
            )
        except UnknownYoungPerson as error:
            raise HTTPException(404, "unknown young person") from error
        runtime.dispatcher.dispatch_due(young_person_id=young_person_id)
        with runtime.database.session() as session:
            messages = session.scalars(
                sa.select(Message)
                .where(Message.id.in_([s.message_id for s in sent]))
                .order_by(Message.id)
            ).all()
            return Replies(replies=[_public(m) for m in messages])

    @routes.get("/api/simulator/{young_person_id}/messages")
    def get_messages(young_person_id: int, after: Annotated[int, Query(ge=0)] = 0) -> Thread:
        """The simulator thread after message ``after``, including proactive messages."""
        _person_exists(young_person_id)
        with runtime.database.session() as session:
            messages = session.scalars(
                sa.select(Message)
                .where(
                    Message.young_person_id == young_person_id,
                    Message.channel == Channel.SIMULATOR,
                    Message.id > after,
                    sa.or_(
                        Message.direction == Direction.INBOUND,
                        Message.sent_at.is_not(None),
                    ),
                )
                .order_by(Message.id)
            ).all()
            return Thread(messages=[_public(m) for m in messages])

    @routes.get("/simulator", response_class=HTMLResponse)
    def choose(request: Request) -> HTMLResponse:
        with runtime.database.session() as session:
            people = session.execute(
                sa.select(YoungPerson.id, YoungPerson.first_name).order_by(YoungPerson.id)
            ).all()
        return pages.render(request, "simulator_list.html", people=people)

    @routes.get("/simulator/{young_person_id}", response_class=HTMLResponse)
    def phone(request: Request, young_person_id: int) -> HTMLResponse:
        person = _person_exists(young_person_id)
        return pages.render(
            request, "simulator.html", person_id=person.id, first_name=person.first_name
        )

    return routes
