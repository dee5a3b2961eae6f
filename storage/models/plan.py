"""What the young person wants and the plan towards it: dreams, goals, sub-goals, meetings."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dialogs.types import CaptureSource, Channel, DreamCategory, GoalStatus, MeetingStatus
from storage.models.base import Base, enum_column, utcnow


class Dream(Base):
    """A dream or wish in the young person's own words."""

    __tablename__ = "dream"

    id: Mapped[int] = mapped_column(primary_key=True)
    young_person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("young_person.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(sa.Text())
    category: Mapped[DreamCategory] = mapped_column(enum_column(DreamCategory))
    captured_at: Mapped[datetime] = mapped_column(default=utcnow)
    captured_via: Mapped[CaptureSource] = mapped_column(enum_column(CaptureSource))
    channel: Mapped[Channel | None] = mapped_column(enum_column(Channel))
    message_id: Mapped[int | None] = mapped_column(sa.ForeignKey("message.id", ondelete="SET NULL"))
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"))


class Goal(Base):
    """A goal of the education plan (uddannelsesplan), split into sub-goals (delmål)."""

    __tablename__ = "goal"

    id: Mapped[int] = mapped_column(primary_key=True)
    young_person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("young_person.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text())
    status: Mapped[GoalStatus] = mapped_column(enum_column(GoalStatus), default=GoalStatus.PLANNED)
    due_date: Mapped[date | None]
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    sub_goals: Mapped[list[SubGoal]] = relationship(
        back_populates="goal",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="SubGoal.position",
    )


class SubGoal(Base):
    __tablename__ = "sub_goal"
    __table_args__ = (sa.Index("ix_sub_goal_due", "status", "due_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    goal_id: Mapped[int] = mapped_column(sa.ForeignKey("goal.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[GoalStatus] = mapped_column(enum_column(GoalStatus), default=GoalStatus.PLANNED)
    due_date: Mapped[date | None]
    position: Mapped[int] = mapped_column(default=0)
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    goal: Mapped[Goal] = relationship(back_populates="sub_goals")


class Meeting(Base):
    __tablename__ = "meeting"
    __table_args__ = (sa.Index("ix_meeting_person_time", "young_person_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    young_person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("young_person.id", ondelete="CASCADE")
    )
    starts_at: Mapped[datetime]
    duration_minutes: Mapped[int] = mapped_column(default=60)
    place: Mapped[str | None] = mapped_column(sa.String(200))
    link: Mapped[str | None] = mapped_column(sa.String(500))
    with_whom: Mapped[str | None] = mapped_column(sa.String(200))
    staff_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    purpose: Mapped[str | None] = mapped_column(sa.String(200))
    status: Mapped[MeetingStatus] = mapped_column(
        enum_column(MeetingStatus), default=MeetingStatus.PLANNED
    )
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
