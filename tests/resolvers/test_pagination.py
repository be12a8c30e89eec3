"""Cursor pagination over SQL (``recoverly.resolvers.pagination``) on both backends: pages
newest first, ``first``/``after`` at their edges, cursors the API refuses, page info and the
totals a connection reports. (The contract's connections page forward only: no ``last`` or
``before`` argument exists.)"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from recoverly.database import Database
from recoverly.models import Admin, Membership, Organization
from recoverly.resolvers.global_ids import MAX_ROW_ID, to_global_id
from recoverly.resolvers.pagination import (
    MAX_PAGE_SIZE,
    PaginationError,
    count_rows,
    decode_cursor,
    encode_cursor,
    paginate,
    paginate_each,
)
from recoverly.schema.connections import Connection
from tests.conftest import empty_database

ORGANIZATIONS = 25


@pytest.fixture(scope="module")
async def db(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Database]:
    """25 organizations (every third one's slug ends in ``-x``); 3 admins, members of the
    first organization (3), the second (1) and none of the others."""
    async with empty_database(backend, tmp_path_factory.mktemp(f"pages-{backend}")) as db:
        async with db.transaction() as session:
            organizations = [
                Organization(name=f"Org {i}", slug=f"org-{i}" + ("-x" if i % 3 == 0 else ""))
                for i in range(ORGANIZATIONS)
            ]
            admins = [Admin(email=f"a{i}@example.net", name=f"A {i}") for i in range(3)]
            session.add_all([*organizations, *admins])
            await session.flush()
            session.add_all(
                Membership(admin_id=admin.id, organization_id=organizations[0].id)  # type: ignore[arg-type]
                for admin in admins
            )
            session.add(Membership(admin_id=admins[0].id, organization_id=organizations[1].id))  # type: ignore[arg-type]
        yield db


async def ids(db: Database) -> list[int]:
    """Every organization's ID, newest first: the order pages follow."""
    async with db.session() as session:
        found = (await session.exec(select(Organization.id))).all()
    return sorted((i for i in found if i is not None), reverse=True)


async def page(db: Database, first: int, after: str | None = None, **options: Any) -> Any:
    async with db.session() as session:
        return await paginate(
            session, select(Organization), model=Organization, first=first, after=after, **options
        )


async def test_the_first_page_is_the_newest_rows_with_their_cursors(db: Database) -> None:
    expected = (await ids(db))[:10]
    first = await page(db, 10)
    assert [row.id for row in first.rows] == expected
    assert first.cursors == [encode_cursor(i) for i in expected]
    assert first.has_next_page is True


async def test_walking_after_each_end_cursor_yields_every_row_once_in_order(
    db: Database,
) -> None:
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        current = await page(db, 7, after)
        pages += 1
        seen += [row.id for row in current.rows]
        if not current.has_next_page:
            break
        after = current.cursors[-1]
    assert seen == await ids(db)
    assert pages == 4  # 7 + 7 + 7 + 4
    assert len(current.rows) == ORGANIZATIONS - 21


async def test_a_page_that_ends_exactly_at_the_last_row_has_no_next_page(db: Database) -> None:
    everything = await page(db, ORGANIZATIONS)
    assert len(everything.rows) == ORGANIZATIONS
    assert everything.has_next_page is False
    one_short = await page(db, ORGANIZATIONS - 1)
    assert one_short.has_next_page is True
    last = await page(db, 1, one_short.cursors[-1])
    assert [row.id for row in last.rows] == (await ids(db))[-1:]
    assert last.has_next_page is False


async def test_after_the_last_cursor_the_page_is_empty(db: Database) -> None:
    oldest = (await ids(db))[-1]
    empty = await page(db, 5, encode_cursor(oldest))
    assert (empty.rows, empty.cursors, empty.has_next_page) == ([], [], False)


async def test_after_a_deleted_rows_cursor_the_walk_goes_on_from_there(db: Database) -> None:
    # Keyset pagination: a cursor names a position, not a row that must still exist.
    newest = (await ids(db))[0]
    beyond = await page(db, 3, encode_cursor(newest + 1000))
    assert [row.id for row in beyond.rows] == (await ids(db))[:3]


@pytest.mark.parametrize("first", [1, MAX_PAGE_SIZE])
async def test_first_at_its_bounds_is_served(db: Database, first: int) -> None:
    served = await page(db, first)
    assert len(served.rows) == min(first, ORGANIZATIONS)


@pytest.mark.parametrize("first", [0, -1, MAX_PAGE_SIZE + 1])
async def test_first_out_of_bounds_is_refused_naming_the_range(db: Database, first: int) -> None:
    with pytest.raises(PaginationError, match=f"first must be between 1 and 100, got {first}"):
        await page(db, first)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage",
        "not base64 !",
        _b64("cursor:0"),  # IDs start at 1
        _b64("cursor:07"),  # not how this module writes 7
        _b64("cursor:-3"),
        _b64(f"cursor:{MAX_ROW_ID + 1}"),
        _b64("cursor:12345678901"),
        _b64("offset:5"),
        _b64("cursor:5").rstrip("="),  # a different spelling of a real cursor
        to_global_id("Organization", 5),  # an ID, not a cursor
        "A" * 41,
    ],
)
async def test_a_cursor_this_module_did_not_make_is_refused(db: Database, cursor: str) -> None:
    with pytest.raises(PaginationError, match="invalid cursor"):
        decode_cursor(cursor)
    with pytest.raises(PaginationError, match="invalid cursor"):
        await page(db, 5, cursor)


@pytest.mark.parametrize("row_id", [1, 7, 10**6, MAX_ROW_ID])
def test_cursors_round_trip(row_id: int) -> None:
    assert decode_cursor(encode_cursor(row_id)) == row_id


async def test_the_total_counts_the_filtered_listing_not_the_page(db: Database) -> None:
    statement = select(Organization).where(col(Organization.slug).endswith("-x"))
    async with db.session() as session:
        filtered = await paginate(session, statement, model=Organization, first=2, after=None)
        assert filtered.total_count is None  # counted only when a client asks
        assert filtered.count_statement is not None
        total = await count_rows(session, filtered.count_statement)
    assert total == len(range(0, ORGANIZATIONS, 3)) == 9
    assert all(row.slug.endswith("-x") for row in filtered.rows)
    assert filtered.has_next_page is True


async def test_a_joined_listing_counts_its_rows(db: Database) -> None:
    statement = (
        select(Organization)
        .join(Membership, col(Membership.organization_id) == col(Organization.id))
        .distinct()
    )
    async with db.session() as session:
        joined = await paginate(session, statement, model=Organization, first=10, after=None)
        assert joined.count_statement is not None
        total = await count_rows(session, joined.count_statement)
    assert total == len(joined.rows) == 2
    assert joined.has_next_page is False


async def test_rows_added_during_a_walk_do_not_shift_later_pages(
    backend: str, tmp_path: Path
) -> None:
    async with empty_database(backend, tmp_path) as fresh:
        async with fresh.transaction() as session:
            session.add_all(Organization(name=f"O {i}", slug=f"o-{i}") for i in range(6))
        before = await ids(fresh)
        first = await page(fresh, 3)
        async with fresh.transaction() as session:
            session.add_all(Organization(name=f"N {i}", slug=f"n-{i}") for i in range(4))
        rest = await page(fresh, 3, first.cursors[-1])
    assert [row.id for row in [*first.rows, *rest.rows]] == before
    assert rest.has_next_page is False


async def test_columns_only_pages_are_rows_of_the_models_columns(db: Database) -> None:
    plain = await page(db, 4)
    core = await page(db, 4, columns_only=True)
    assert [(row.id, row.slug) for row in core.rows] == [(row.id, row.slug) for row in plain.rows]
    assert core.cursors == plain.cursors
    assert not isinstance(core.rows[0], Organization)


async def each(db: Database, keys: list[int], first: int, after: str | None = None) -> Any:
    async with db.session() as session:
        return await paginate_each(
            session,
            select(Membership),
            model=Membership,
            key=col(Membership.organization_id),
            keys=keys,
            first=first,
            after=after,
        )


async def test_one_page_per_key_with_each_keys_total(db: Database) -> None:
    org_ids = sorted(await ids(db))
    busy, single, empty = org_ids[0], org_ids[1], org_ids[2]
    pages = await each(db, [busy, single, empty], first=2)
    assert list(pages) == [busy, single, empty]
    assert [len(pages[k].rows) for k in (busy, single, empty)] == [2, 1, 0]
    assert [pages[k].total_count for k in (busy, single, empty)] == [3, 1, 0]
    assert [pages[k].has_next_page for k in (busy, single, empty)] == [True, False, False]
    assert all(row.organization_id == busy for row in pages[busy].rows)
    member_ids = [row.id for row in pages[busy].rows]
    assert member_ids == sorted(member_ids, reverse=True)
    following = await each(db, [busy], first=2, after=pages[busy].cursors[-1])
    assert len(following[busy].rows) == 1
    assert following[busy].has_next_page is False
    assert following[busy].total_count == 3  # the listing's total, not what is left
    with pytest.raises(PaginationError, match="first must be between"):
        await each(db, [busy], first=MAX_PAGE_SIZE + 1)
    with pytest.raises(PaginationError, match="invalid cursor"):
        await each(db, [busy], first=2, after="nope")


async def test_page_info_of_a_connection(db: Database) -> None:
    first = await page(db, 10)
    connection = Connection.from_page(first, lambda row: row.slug, after=None)
    assert connection.nodes == [row.slug for row in first.rows]
    assert [edge.cursor for edge in connection.edges] == first.cursors
    assert [edge.node for edge in connection.edges] == connection.nodes
    info = connection.page_info
    assert (info.has_next_page, info.has_previous_page) == (True, False)
    assert (info.start_cursor, info.end_cursor) == (first.cursors[0], first.cursors[-1])

    second = await page(db, 10, first.cursors[-1])
    info = Connection.from_page(second, lambda row: row.slug, after=first.cursors[-1]).page_info
    assert info.has_previous_page is True
    assert info.start_cursor == second.cursors[0]

    oldest = encode_cursor((await ids(db))[-1])
    empty = Connection.from_page(await page(db, 10, oldest), lambda row: row, after=oldest)
    assert (empty.edges, empty.nodes) == ([], [])
    assert empty.page_info.start_cursor is None and empty.page_info.end_cursor is None
    assert empty.page_info.has_next_page is False and empty.page_info.has_previous_page is True
