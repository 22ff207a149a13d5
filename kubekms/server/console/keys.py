"""The key pages: projects, the key list (filter, find, paging), a key's page, create, change, account."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlencode

from aiohttp import web

from kubekms.backend import Backend, KeyMetadata, KeyState, RotationStatus
from kubekms.errors import AccessDenied, InvalidArgument, KMSError, NotFound, Reason
from kubekms.keystore.rules import check_not_reserved_alias
from kubekms.server.console.actions import ACTIONS
from kubekms.server.console.audit_page import creation_of
from kubekms.server.console.gate import PREFIX, Gate, Visitor
from kubekms.server.console.versions import VersionRow, version_rows
from kubekms.wire import inputs
from kubekms.wire.v1 import errors as v1_errors
from kubekms.wire.v1.fields import key_ref_text

T = TypeVar("T")
PAGE_SIZE = 50
PAGE_SIZES = (10, 1000)
MAX_QUERY_CHARS = 300
MAX_FOUND = 1000  # keys shown for one tag search
STATE_FILTERS = {
    "": None,
    "enabled": KeyState.ENABLED,
    "disabled": KeyState.DISABLED,
    "pending-deletion": KeyState.PENDING_DELETION,
}


def keys_url(project_id: str, **query: object) -> str:
    query = {name: value for name, value in query.items() if value not in (None, "")}
    return f"{PREFIX}p/{project_id}/keys" + (f"?{urlencode(query)}" if query else "")


def key_url(project_id: str, key_id: str) -> str:
    return f"{PREFIX}p/{project_id}/keys/{key_id}"


class KeyPages:
    def __init__(self, gate: Gate, projects: Callable[[], Iterable[str]]) -> None:
        self._gate = gate
        self._projects = projects

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get("/", self.home)
        router.add_get("/projects", self.project_list)
        router.add_get("/p/{project}/keys", self.key_list)
        router.add_get("/p/{project}/new-key", self.new_key)
        router.add_post("/p/{project}/keys", self.create_key)
        router.add_get("/p/{project}/keys/{key}", self.key_page)
        router.add_get("/p/{project}/keys/{key}/delete", self.confirm_deletion)
        router.add_post("/p/{project}/keys/{key}/{action}", self.key_action)
        router.add_get("/p/{project}/account", self.account)

    # ------------------------------------------------------------------ projects

    def _projects_of(self, visitor: Visitor) -> list[str]:
        granted = visitor.principal.projects
        return sorted(self._projects() if granted is None else granted)

    async def home(self, request: web.Request) -> web.Response:
        visitor = await self._gate.visitor(request)
        projects = self._projects_of(visitor)
        if len(projects) == 1:
            raise web.HTTPSeeOther(keys_url(projects[0]))
        raise web.HTTPSeeOther(PREFIX + "projects")

    async def project_list(self, request: web.Request) -> web.Response:
        visitor = await self._gate.visitor(request)
        wanted = request.query.get("open", "")
        if wanted:
            raise web.HTTPSeeOther(keys_url(self._gate.valid_project_id(wanted)))
        return self._gate.page(
            visitor,
            "projects.html",
            projects=self._projects_of(visitor),
            any_project=visitor.principal.projects is None,
        )

    # ------------------------------------------------------------------ key list

    async def key_list(self, request: web.Request) -> web.Response:
        visitor = await self._gate.visitor(request)
        project = self._gate.project_id(request)
        access = self._gate.access(visitor, project)
        visitor.principal.check_project(project)  # a project it may not use is refused, not shown empty
        query = request.query
        found = inputs.text(query.get("q", ""), "search", max_chars=MAX_QUERY_CHARS).strip()
        state_name = query.get("state", "")
        if state_name not in STATE_FILTERS:
            raise InvalidArgument(
                "state must be enabled, disabled or pending-deletion", reason=Reason.STATE_FILTER_INVALID
            )
        state = STATE_FILTERS[state_name]
        limit = inputs.integer(query.get("limit", str(PAGE_SIZE)), "limit", PAGE_SIZES, allow_text=True)
        marker = inputs.marker(query.get("marker"), "marker")
        context: dict[str, Any] = {
            "project": project,
            "found": found,
            "state_name": state_name,
            "limit": limit,
            "may_create": access.may("create-key"),
            "next_url": "",
            "previous_url": "",
            "total": None,
            "first": (marker or 0) + 1,
            "message": "",
        }
        if found:
            keys, context["message"] = await self._find(visitor, project, found, state)
            if len(keys) == 1 and "=" not in found:
                raise web.HTTPSeeOther(key_url(project, keys[0].key_id))
        elif access.may("list-keys"):
            page = await self._gate.call(
                visitor,
                project,
                "list-keys",
                lambda backend: backend.list_keys(
                    limit=limit, marker=None if marker is None else str(marker), state=state
                ),
            )
            keys, context["total"] = list(page.keys), page.total
            if page.next_marker:
                context["next_url"] = keys_url(project, state=state_name, limit=limit, marker=page.next_marker)
            if marker:
                context["previous_url"] = keys_url(
                    project, state=state_name, limit=limit, marker=max(marker - limit, 0) or None
                )
        else:
            keys = await self._granted_keys(visitor, project, state)
            if visitor.principal.keys is None:
                context["message"] = "Your permissions do not list keys: find a key by its id or alias."
        names = await self._names_of_unnamed(visitor, project, keys)
        return self._gate.page(visitor, "keys.html", keys=keys, names=names, **context)

    async def _names_of_unnamed(self, visitor: Visitor, project: str, keys: list[KeyMetadata]) -> dict[str, str]:
        """Key id -> first alias, for keys made without a primary alias and named afterwards (the AWS wire's
        CreateKey then CreateAlias): listed as "(no alias)" they looked unnamed. Only where the principal may
        read the key's aliases (its key list, and the key's own policy)."""
        access = self._gate.access(visitor, project)
        names: dict[str, str] = {}
        for key in keys:
            if key.alias or key.state is KeyState.DESTROYED or not access.may_on("list-aliases", key):
                continue
            try:  # a key's own policy may deny the visitor its aliases: that key stays unnamed, the list stands
                aliases = await self._gate.call(
                    visitor, project, "list-aliases", _list_aliases(key.key_id), key_ref=key.key_id
                )
            except (AccessDenied, NotFound):  # NotFound: deleted since the list was read
                continue
            if aliases:
                names[key.key_id] = aliases[0]
        return names

    async def _find(
        self, visitor: Visitor, project: str, found: str, state: KeyState | None
    ) -> tuple[list[KeyMetadata], str]:
        """``tag=value`` finds keys by tag (list-keys-by-tags); anything else is one key's id or alias."""
        if "=" in found:
            tag_key, _, tag_value = found.partition("=")
            keys = await self._gate.call(
                visitor,
                project,
                "list-keys-by-tags",
                lambda backend: backend.find_keys_by_tag(tag_key.strip(), tag_value.strip()),
            )
            keys = [key for key in keys if state is None or key.state is state][:MAX_FOUND]
            return keys, "" if keys else f"No key has the tag {found}."
        try:
            key = await self._gate.call(visitor, project, "describe-key", _describe(found), key_ref=found)
        except (NotFound, AccessDenied):
            return [], f"No key you may see is named {found}."
        return [key], ""

    async def _granted_keys(self, visitor: Visitor, project: str, state: KeyState | None) -> list[KeyMetadata]:
        """A principal limited to some keys sees those its key list names (each described as on the wire)."""
        keys: dict[str, KeyMetadata] = {}
        if not self._gate.access(visitor, project).may("describe-key") or visitor.principal.keys is None:
            return []
        for ref in sorted(visitor.principal.keys):
            try:
                key = await self._gate.call(visitor, project, "describe-key", _describe(ref), key_ref=ref)
            except (NotFound, AccessDenied, InvalidArgument):
                continue
            if state is None or key.state is state:
                keys[key.key_id] = key
        return sorted(keys.values(), key=lambda key: key.created_at)

    # ------------------------------------------------------------------ one key

    async def _describe(self, visitor: Visitor, project: str, key_ref: str) -> KeyMetadata:
        return await self._gate.call(
            visitor, project, "describe-key", lambda backend: backend.describe_key(key_ref), key_ref=key_ref
        )

    async def key_page(self, request: web.Request) -> web.Response:
        visitor = await self._gate.visitor(request)
        project = self._gate.project_id(request)
        key_ref = key_ref_text(request.match_info["key"], "key")

        async def described(backend: Backend) -> tuple[KeyMetadata, list[VersionRow] | None]:
            key = await backend.describe_key(key_ref)
            alive = key.state is not KeyState.DESTROYED
            return key, await version_rows(backend, key) if alive else None

        key, versions = await self._gate.call(visitor, project, "describe-key", described, key_ref=key_ref)
        access = self._gate.access(visitor, project)
        path = self._gate.audit_path
        creation = None  # from the audit log: only for those who may read it, and only while it says so
        if path is not None and access.may_read_audit():
            creation = await asyncio.to_thread(creation_of, path, project, key.key_id)
        # each section as the wire answers it (the key's policy included): one it may not read is left out
        rotation = None
        if access.may_on("get-key-rotation-status", key) and key.state is not KeyState.DESTROYED:
            status = _rotation_status(key.key_id)
            rotation = await self._readable(visitor, project, "get-key-rotation-status", status, key)
        aliases = tags = None
        if access.may_on("list-aliases", key):
            aliases = await self._readable(visitor, project, "list-aliases", lambda _: _now(list(key.aliases)), key)
        if access.may_on("list-key-tags", key):
            tags = await self._readable(visitor, project, "list-key-tags", lambda _: _now(dict(key.tags)), key)
        offered = {
            name
            for name, action in ACTIONS.items()
            if key.state in action.states and access.may_on(action.operation, key)
        }
        return self._gate.page(
            visitor,
            "key.html",
            project=project,
            key=key,
            versions=versions,
            creation=creation,
            rotation=rotation,
            offered=offered,
            aliases=aliases,
            tags=tags,
        )

    async def _readable(
        self, visitor: Visitor, project: str, operation: str, run: Callable[[Backend], Awaitable[T]], key: KeyMetadata
    ) -> T | None:
        """``run`` through the gate on ``key``; None when the key's policy denies the visitor ``operation``."""
        try:
            return await self._gate.call(visitor, project, operation, run, key_ref=key.key_id)
        except AccessDenied:
            return None

    async def confirm_deletion(self, request: web.Request) -> web.Response:
        visitor = await self._gate.visitor(request)
        project = self._gate.project_id(request)
        key = await self._describe(visitor, project, key_ref_text(request.match_info["key"], "key"))
        if not self._gate.access(visitor, project).may_on("schedule-key-deletion", key):
            raise visitor.principal.deny_key("schedule-key-deletion", key.key_id)
        return self._gate.page(visitor, "delete.html", project=project, key=key)

    async def key_action(self, request: web.Request) -> web.Response:
        visitor = await self._gate.visitor(request)
        project = self._gate.project_id(request)
        action = ACTIONS.get(request.match_info["action"])
        if action is None:
            raise NotFound("no such console action", reason=Reason.UNKNOWN_PATH)
        key_ref = key_ref_text(request.match_info["key"], "key")
        back = key_url(project, key_ref)
        try:
            form = await self._gate.form(request, visitor)

            async def act(backend: Backend) -> str:
                if action.tag_keys is not None:
                    await visitor.principal.authorize_tag_change(backend, key_ref, action.tag_keys(form),
                                                                 account=project)  # fmt: skip
                return await action.run(backend, key_ref, form)

            notice = await self._gate.call(visitor, project, action.operation, act, key_ref=key_ref)
        except KMSError as error:
            return self._gate.error_page(visitor, error, back=back, project=project)
        await self._gate.notify(visitor, notice)
        raise web.HTTPSeeOther(back)

    # ------------------------------------------------------------------ create

    async def new_key(self, request: web.Request) -> web.Response:
        visitor = await self._gate.visitor(request)
        project = self._gate.project_id(request)
        if not self._gate.access(visitor, project).may("create-key"):
            raise visitor.principal.deny_account_wide("create-key")
        return self._gate.page(visitor, "new_key.html", project=project, alias="", description="", error=None)

    async def create_key(self, request: web.Request) -> web.Response:
        visitor = await self._gate.visitor(request)
        project = self._gate.project_id(request)
        form = await self._gate.form(request, visitor)
        alias = form.text("alias", max_chars=300).strip()
        description = form.text("description", max_chars=1024)
        try:
            if not alias:
                raise InvalidArgument("a key needs an alias", reason=Reason.ALIAS_INVALID)
            check_not_reserved_alias(alias)
            key = await self._gate.call(
                visitor, project, "create-key", lambda backend: backend.create_key(alias, description=description)
            )
        except KMSError as error:
            return self._gate.page(
                visitor,
                "new_key.html",
                status=v1_errors.error_status(error),
                project=project,
                alias=alias,
                description=description,
                error=error,
            )
        await self._gate.notify(visitor, f"Key {alias} created.")
        raise web.HTTPSeeOther(key_url(project, key.key_id))

    # ------------------------------------------------------------------ account

    async def account(self, request: web.Request) -> web.Response:
        visitor = await self._gate.visitor(request)
        project = self._gate.project_id(request)
        access = self._gate.access(visitor, project)
        if not (access.may("user-quotas") or access.may("user-instances")):
            raise visitor.principal.deny_account_wide("user-quotas")
        quotas = instances = None
        if access.may("user-quotas"):
            quotas = await self._gate.call(visitor, project, "user-quotas", lambda backend: backend.quotas())
        if access.may("user-instances"):
            instances = await self._gate.call(
                visitor, project, "user-instances", lambda backend: backend.instance_count()
            )
        return self._gate.page(visitor, "account.html", project=project, quotas=quotas, instances=instances)


async def _now(value: T) -> T:
    return value


def _rotation_status(key_id: str) -> Callable[[Backend], Awaitable[RotationStatus]]:
    return lambda backend: backend.get_rotation_status(key_id)


def _list_aliases(key_id: str) -> Callable[[Backend], Awaitable[list[str]]]:
    return lambda backend: backend.list_aliases(key_id)


def _describe(key_ref: str) -> Callable[[Backend], Awaitable[KeyMetadata]]:
    return lambda backend: backend.describe_key(key_ref)
