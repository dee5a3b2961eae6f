"""Young people, their tags and the append-only record of consent and opt-out."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dialogs.types import Channel, ConsentKind, ConsentSource, Occupation, YoungPersonStatus
from storage.models.base import Base, enum_column, utcnow
from storage.models.tenants import Municipality, StaffUser


class YoungPerson(Base):
    __tablename__ = "young_person"
    __table_args__ = (
        # One person per phone number within a municipality: an import updates, never doubles.
        sa.UniqueConstraint("municipality_id", "phone"),
        sa.Index("ix_young_person_kontaktperson", "kontaktperson_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(
        sa.ForeignKey("municipality.id", ondelete="RESTRICT")
    )
    first_name: Mapped[str] = mapped_column(sa.String(80))
    birth_date: Mapped[date]
    kontaktperson_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("staff_user.id", ondelete="SET NULL")
    )
    language: Mapped[str] = mapped_column(sa.String(8), default="da")
    status: Mapped[YoungPersonStatus] = mapped_column(
        enum_column(YoungPersonStatus), default=YoungPersonStatus.INVITED
    )
    status_reason: Mapped[str | None] = mapped_column(sa.String(200))
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # In education, a job, another activity or nothing; KUI deadlines follow a drop-out under 18.
    occupation: Mapped[Occupation | None] = mapped_column(enum_column(Occupation))
    # E.164, validated with phonenumbers before it is stored.
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    telegram_chat_id: Mapped[int | None] = mapped_column(sa.BigInteger(), unique=True)
    preferred_channel: Mapped[Channel | None] = mapped_column(enum_column(Channel))
    # Set when the young person blocked the bot; messages fall back to SMS if a phone is known.
    telegram_blocked_at: Mapped[datetime | None]
    # The last provider error that says the phone cannot get SMS (e.g. 30005 unknown handset).
    sms_error_code: Mapped[str | None] = mapped_column(sa.String(16))
    invite_code: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    invite_code_expires_at: Mapped[datetime | None]
    invite_code_used_at: Mapped[datetime | None]
    # The municipality's own reference for the person (never a CPR number).
    external_ref: Mapped[str | None] = mapped_column(sa.String(64))
    last_inbound_at: Mapped[datetime | None]
    # Erased on request: personal data removed, the row kept so counts and the audit log stay.
    erased_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    municipality: Mapped[Municipality] = relationship()
    kontaktperson: Mapped[StaffUser | None] = relationship()
    tags: Mapped[list[YoungPersonTag]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="YoungPersonTag.tag"
    )

    @property
    def tag_names(self) -> list[str]:
        return [t.tag for t in self.tags]

    def age_on(self, day: date) -> int:
        had_birthday = (day.month, day.day) >= (self.birth_date.month, self.birth_date.day)
        return day.year - self.birth_date.year - (0 if had_birthday else 1)


class YoungPersonTag(Base):
    __tablename__ = "young_person_tag"

    young_person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("young_person.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(sa.String(40), primary_key=True, index=True)


class ConsentEvent(Base):
    """Append-only: consent given or withdrawn, opted out or back in. Never updated."""

    __tablename__ = "consent_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    young_person_id: Mapped[int] = mapped_column(
        sa.ForeignKey("young_person.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[ConsentKind] = mapped_column(enum_column(ConsentKind))
    source: Mapped[ConsentSource] = mapped_column(enum_column(ConsentSource))
    channel: Mapped[Channel | None] = mapped_column(enum_column(Channel))
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_user.id"))
    note: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AppendOnlyError(RuntimeError):
    pass


@event.listens_for(ConsentEvent, "before_update")
def _refuse_update(*_: object) -> None:
    raise AppendOnlyError("consent events are append-only")
