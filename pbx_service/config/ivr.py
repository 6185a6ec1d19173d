"""The IVR menus as they appear in the YAML config, validated so no caller can be stranded.

The keys, all under ``ivr:``::

    ivr:
      start: main                          # the first menu a caller hears
      recording_notice: recording-notice   # optional: played once before it, not interruptible
      max_steps: 30                        # key presses/timeouts per call before the default
      menus:
        main:
          prompt: main-menu        # prompt name: ivr_prompts/<lang>/main-menu.wav
          timeout: 5               # seconds to wait for a key after the prompt ends
          max_retries: 3           # wrong keys/timeouts tolerated; one more goes to default
          invalid_prompt: invalid  # played before the menu again after a wrong key (null: none)
          timeout_prompt: timeout  # played before the menu again after silence (null: none)
          barge_in: true           # a key stops the prompt at once (false: keys are ignored
                                   # until the prompt ends)
          direct_dial: {enabled: true, digits: 3, first: "1-8", inter_digit_timeout: 2}
          options:
            "1": {team: sales, category: customer}
            "2": {team: hr, category: job_applicant}
            "3": {menu: partners, category: partner}
            "0": {operator: true}
            "9": {repeat: true}
            "5": {repeat: true, language: en}        # "for English press 5"
            "8": {voicemail: general, category: other}
            "7": {self_service: order_status, category: customer}
            "6": {extension: "101"}
          default: {operator: true}   # when retries run out: never hang up on the caller
        partners:
          prompt: partners-menu
          options:
            "1": {team: purchasing}
            "*": {back: true}

Keys are ``0``-``9``, ``*`` and ``#``. Quote them: unquoted ``*`` is a YAML alias and an
unquoted ``#`` starts a comment, so the option silently disappears.

Each option is a mapping with exactly one action key, and optionally ``category`` (what kind
of caller this is: ``customer``, ``job_applicant``, ``partner``, ``other`` or any name of
yours, stored with the call) and ``language`` (switch the prompts, e.g. ``en``):

======================  ===============================================================
``menu: NAME``          go to another menu
``team: NAME``          ring a team (``teams:``)
``voicemail: BOX``      take a message into a voicemail box
``self_service: NAME``  hand the call to a self-service flow (e.g. ``order_status``)
``operator: true``      ring the operator (the reception team)
``repeat: true``        play the current menu again
``back: true``          return to the menu the caller came from (not on the start menu)
``extension: "N"``      ring an internal number
======================  ===============================================================

``default`` (what happens when retries run out; operator unless set) must be a person or a
voicemail: ``team``, ``operator``, ``voicemail`` or ``extension``.

``direct_dial`` lets a caller dial an internal number of ``digits`` digits starting with one of
``first`` (digits and ranges: ``"1-8"``, ``"2,5-7"``). A first digit that is also an option
waits ``inter_digit_timeout`` seconds for a second digit before it counts as the option.

The shipped menu (also what `default_ivr` builds, with team names that exist)::

    ivr:
      start: main
      menus:
        main:
          prompt: main-menu   # 1 customer, 2 job applicant, 3 partner or supplier, 0 operator
          options:
            "1": {team: sales, category: customer}
            "2": {team: hr, category: job_applicant}
            "3": {team: partners, category: partner}
            "0": {operator: true}
          default: {operator: true}

Checks that need the rest of the config (teams, voicemail boxes, prompt files) are in
`check_references`; YAML's silent "last duplicate key wins" is caught by `find_duplicate_keys`.
"""

from __future__ import annotations

import difflib
import re
from collections import deque
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

KEYS = "0123456789*#"
DIGITS = "0123456789"

# Names end up in file paths, media URIs, call-log columns and "main>1>partners" paths.
_PROMPT_RE = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
_LANG_RE = re.compile(r"[a-z]{2,3}(?:_[A-Za-z0-9]{2,8})?")
_CATEGORY_RE = re.compile(r"[a-z][a-z0-9_]*")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_EXTENSION_RE = re.compile(r"[0-9]{1,15}")
_FIRST_ITEM_RE = re.compile(r"\s*([0-9])\s*(?:-\s*([0-9])\s*)?")

Loc = tuple[str | int, ...]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _raise_all(title: str, problems: list[tuple[Loc, str, object]]) -> None:
    """Raise one pydantic error per problem, each at its own key path.

    pydantic re-raises a ValidationError thrown inside a validator with the validator's
    location prepended, so the loader shows ``ivr.menus.main.options.3.menu: ...``.
    """
    if problems:
        raise ValidationError.from_exception_data(
            title,
            [
                InitErrorDetails(
                    type=PydanticCustomError("ivr_config", "{reason}", {"reason": reason}),
                    loc=loc,
                    input=value,
                )
                for loc, reason, value in problems
            ],
        )


def _name_text(value: object) -> object:
    # YAML reads `team: 2` or `extension: 101` as numbers; the name is the text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _check_prompt(value: object) -> object:
    value = _name_text(value)
    if value is None or (isinstance(value, str) and ":" in value):
        return value  # None: no prompt; "sound:beep": a media URI, played as it is
    if not isinstance(value, str) or not _PROMPT_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a prompt name; use lowercase letters, digits and '-' "
            "(the file ivr_prompts/<lang>/NAME.wav), e.g. main-menu"
        )
    return value


def _check_category(value: str | None) -> str | None:
    if value is not None and not _CATEGORY_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a category name; use lowercase letters, digits and '_', "
            "e.g. customer, job_applicant, partner, other"
        )
    return value


def _check_language(value: str | None) -> str | None:
    if value is not None and not _LANG_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a language; use a code such as ru, en or pt_BR")
    return value


def _check_name(value: object) -> object:
    value = _name_text(value)
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a name; use letters, digits, '-' and '_', e.g. sales, order_status"
        )
    return value


PromptName = Annotated[str, BeforeValidator(_check_prompt)]
Name = Annotated[str, BeforeValidator(_check_name)]


# ---- actions ------------------------------------------------------------------------------


class _Action(_Strict):
    kind: ClassVar[str]
    category: str | None = Field(
        None, description="What kind of caller chose this: customer, job_applicant, partner, ..."
    )
    language: str | None = Field(None, description="Switch the prompts to this language.")

    @field_validator("category")
    @classmethod
    def _category(cls, value: str | None) -> str | None:
        return _check_category(value)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return _check_language(value)


class MenuAction(_Action):
    """Go to another menu."""

    kind: ClassVar[str] = "menu"
    menu: Name


class TeamAction(_Action):
    """Ring a team."""

    kind: ClassVar[str] = "team"
    team: Name


class VoicemailAction(_Action):
    """Take a message into a voicemail box."""

    kind: ClassVar[str] = "voicemail"
    voicemail: Name


class SelfServiceAction(_Action):
    """Hand the call to a self-service flow; it ends at a person or voicemail itself."""

    kind: ClassVar[str] = "self_service"
    self_service: Name


class OperatorAction(_Action):
    """Ring the operator (the reception team)."""

    kind: ClassVar[str] = "operator"
    operator: Literal[True] = True


class RepeatAction(_Action):
    """Play the current menu again."""

    kind: ClassVar[str] = "repeat"
    repeat: Literal[True] = True


class BackAction(_Action):
    """Return to the menu the caller came from."""

    kind: ClassVar[str] = "back"
    back: Literal[True] = True


class ExtensionAction(_Action):
    """Ring an internal number."""

    kind: ClassVar[str] = "extension"
    extension: str

    @field_validator("extension", mode="before")
    @classmethod
    def _digits(cls, value: object) -> object:
        value = _name_text(value)
        if not isinstance(value, str) or not _EXTENSION_RE.fullmatch(value):
            raise ValueError(
                f'{value!r} is not an internal number; write its digits, quoted, e.g. "101"'
            )
        return value


PERSON_ACTIONS: tuple[type[_Action], ...] = (
    TeamAction,
    OperatorAction,
    VoicemailAction,
    ExtensionAction,
)
ALL_ACTIONS: tuple[type[_Action], ...] = (
    MenuAction,
    *PERSON_ACTIONS,
    SelfServiceAction,
    RepeatAction,
    BackAction,
)
_BY_KIND = {cls.kind: cls for cls in ALL_ACTIONS}
_KINDS_TEXT = ", ".join(cls.kind for cls in ALL_ACTIONS)
_PERSON_TEXT = "team, operator, voicemail or extension"

PersonActionType = TeamAction | OperatorAction | VoicemailAction | ExtensionAction
TerminalActionType = PersonActionType | SelfServiceAction
ActionType = TerminalActionType | MenuAction | RepeatAction | BackAction


def _action(value: object, allowed: tuple[type[_Action], ...], what: str) -> _Action:
    """Pick the action class by the one action key present, then validate with it.

    Dispatching by hand (rather than a pydantic tagged union) keeps the tag out of error
    paths: ``options.1.category``, not ``options.1.team.category``.
    """
    if isinstance(value, allowed):
        return value
    if isinstance(value, _Action):
        value = value.model_dump(exclude_defaults=False)
    if not isinstance(value, Mapping):
        raise ValueError(
            f"{value!r} is not an action; write a mapping with one of {_KINDS_TEXT}, "
            "e.g. {team: sales} or {operator: true}"
        )
    kinds = [kind for kind in _BY_KIND if kind in value]
    if len(kinds) != 1:
        found = f"found {', '.join(kinds)}" if kinds else "found none"
        raise ValueError(
            f"an action needs exactly one of {_KINDS_TEXT} ({found}); e.g. {{team: sales}}"
        )
    cls = _BY_KIND[kinds[0]]
    if cls not in allowed:
        raise ValueError(f"{kinds[0]} cannot be used here; {what}")
    return cls.model_validate(value)


def _any_action(value: object) -> _Action:
    return _action(value, ALL_ACTIONS, "")


def _person_action(value: object) -> _Action:
    return _action(
        value,
        PERSON_ACTIONS,
        f"the default must lead to a person or a voicemail ({_PERSON_TEXT}), "
        "e.g. {operator: true}, so a caller who presses nothing is never hung up on",
    )


def _dump_action(action: _Action) -> dict[str, Any]:
    # Without this pydantic tries each union member in turn and warns about the others.
    return action.model_dump(exclude_none=True)


Action = Annotated[ActionType, PlainValidator(_any_action), PlainSerializer(_dump_action)]
PersonAction = Annotated[
    PersonActionType, PlainValidator(_person_action), PlainSerializer(_dump_action)
]


# ---- menus --------------------------------------------------------------------------------


def parse_first_digits(value: str) -> frozenset[str]:
    """``"1-8"`` / ``"2,5-7"`` → the digits; ValueError saying how to write it."""
    digits: set[str] = set()
    for item in value.split(","):
        match = _FIRST_ITEM_RE.fullmatch(item)
        if match is None:
            raise ValueError(
                f"{value!r}: {item.strip()!r} is not a digit or a range; "
                'write digits and ranges such as "1-8" or "2,5-7"'
            )
        low, high = match.group(1), match.group(2) or match.group(1)
        if high < low:
            raise ValueError(
                f"{value!r}: the range {low}-{high} runs backwards; write {high}-{low}"
            )
        digits.update(DIGITS[int(low) : int(high) + 1])
    return frozenset(digits)


class DirectDial(_Strict):
    """Dial an internal number from the menu."""

    enabled: bool = True
    digits: int = Field(3, ge=2, le=15, description="Length of an internal number.")
    first: str = Field("1-9", description='Digits an internal number starts with: "1-8", "2,5".')
    inter_digit_timeout: float = Field(
        2.0, gt=0, le=30, description="Seconds to wait for the next digit."
    )
    category: str | None = Field(None, description="Category of callers who dial a number.")

    @field_validator("first", mode="before")
    @classmethod
    def _first(cls, value: object) -> object:
        value = _name_text(value)
        if isinstance(value, str):
            parse_first_digits(value)
        return value

    @field_validator("category")
    @classmethod
    def _category(cls, value: str | None) -> str | None:
        return _check_category(value)

    @property
    def first_digits(self) -> frozenset[str]:
        return parse_first_digits(self.first)


def _option_keys(value: object) -> object:
    """Turn YAML's integer keys into text and refuse anything that is not a phone key."""
    if not isinstance(value, Mapping):
        return value
    problems: list[tuple[Loc, str, object]] = []
    seen: dict[str, object] = {}
    out: dict[str, object] = {}
    for raw, action in value.items():
        key = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
        if not isinstance(key, str) or len(key) != 1 or key not in KEYS:
            problems.append(
                (
                    (str(raw),),
                    f"{raw!r} is not a phone key; use one key of 0-9, * or #, quoted "
                    '(e.g. "1", "*"), one option per key',
                    raw,
                )
            )
            continue
        if key in seen:
            problems.append(
                (
                    (key,),
                    f"key {key} is bound twice (as {seen[key]!r} and {raw!r}); keep one option",
                    raw,
                )
            )
            continue
        seen[key] = raw
        out[key] = action
    _raise_all("options", problems)
    return out


class Menu(_Strict):
    """One menu: a prompt, then a key press."""

    prompt: PromptName = Field(description="What the caller hears, e.g. main-menu.")
    timeout: float = Field(5.0, gt=0, le=60, description="Seconds to wait for a key.")
    max_retries: int = Field(
        3, ge=0, le=10, description="Wrong keys or timeouts tolerated before the default."
    )
    invalid_prompt: PromptName | None = "invalid"
    timeout_prompt: PromptName | None = "timeout"
    barge_in: bool = Field(True, description="A key stops the prompt at once.")
    direct_dial: DirectDial | None = None
    options: Annotated[dict[str, Action], BeforeValidator(_option_keys)] = Field(
        default_factory=dict
    )
    default: PersonAction = Field(
        default_factory=OperatorAction,
        description="Where the caller goes when retries run out: a person or a voicemail.",
    )

    @property
    def dials_directly(self) -> bool:
        return self.direct_dial is not None and self.direct_dial.enabled

    def prompt_names(self) -> list[str]:
        names = [self.prompt, self.invalid_prompt, self.timeout_prompt]
        return [name for name in names if name is not None]


class IvrConfig(_Strict):
    """The menus; see the module docstring for the YAML keys."""

    start: Name = Field("main", description="The first menu.")
    recording_notice: PromptName | None = Field(
        None, description="Prompt played once before the first menu; keys do not stop it."
    )
    max_steps: int = Field(
        30,
        ge=1,
        le=500,
        description="Key presses and timeouts per call before the current menu's default; "
        "stops a caller looping through menus forever.",
    )
    menus: dict[str, Menu] = Field(min_length=1)

    @field_validator("menus", mode="before")
    @classmethod
    def _menu_names(cls, value: object) -> object:
        if isinstance(value, Mapping):
            _raise_all(
                "menus",
                [
                    (
                        (str(name),),
                        f"{name!r} is not a menu name; use letters, digits, '-' and '_'",
                        name,
                    )
                    for name in value
                    if not isinstance(name, str) or not _NAME_RE.fullmatch(name)
                ],
            )
        return value

    @model_validator(mode="after")
    def _graph(self) -> IvrConfig:
        _raise_all("ivr", list(_graph_problems(self)))
        return self

    def prompt_names(self) -> list[str]:
        """Prompt names the menus play (without media URIs such as ``sound:beep``)."""
        names = {name for menu in self.menus.values() for name in menu.prompt_names()}
        if self.recording_notice:
            names.add(self.recording_notice)
        return sorted(name for name in names if ":" not in name)

    def languages(self) -> list[str]:
        """Languages options switch to: their prompts must exist too."""
        actions = [
            a for menu in self.menus.values() for a in (*menu.options.values(), menu.default)
        ]
        return sorted({a.language for a in actions if a.language is not None})


def _suggest(name: str, known: Collection[str], where: str) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}? (or define {name!r} under {where})"
    return f"define it under {where} or use one of {sorted(known)}"


def _graph_problems(ivr: IvrConfig) -> Iterator[tuple[Loc, str, object]]:
    menus = ivr.menus
    if ivr.start not in menus:
        yield (
            ("start",),
            f"no menu named {ivr.start!r}; " + _suggest(ivr.start, menus, "menus"),
            ivr.start,
        )
    for name, menu in menus.items():
        for key, action in menu.options.items():
            if isinstance(action, MenuAction) and action.menu not in menus:
                yield (
                    ("menus", name, "options", key, "menu"),
                    f"no menu named {action.menu!r}; " + _suggest(action.menu, menus, "menus"),
                    action.menu,
                )
            if isinstance(action, BackAction) and name == ivr.start:
                yield (
                    ("menus", name, "options", key),
                    "back on the start menu has nowhere to go; bind the key to repeat, "
                    "operator or a team instead",
                    key,
                )
    reaches = _menus_reaching_a_person(ivr)
    for name, menu in menus.items():
        if name not in reaches:
            yield (
                ("menus", name, "options"),
                "no option leads to a person or a voicemail, not even through submenus; add "
                'one such as "0": {operator: true} or a team, voicemail or extension',
                sorted(menu.options),
            )


def _menus_reaching_a_person(ivr: IvrConfig) -> set[str]:
    """Menus from which some sequence of keys ends at a person or a voicemail.

    A backwards search: start from menus with a direct person option and walk the
    "menu X has an option to menu Y" edges in reverse.
    """
    parents: dict[str, set[str]] = {name: set() for name in ivr.menus}
    found: set[str] = set()
    for name, menu in ivr.menus.items():
        for action in menu.options.values():
            if isinstance(action, PERSON_ACTIONS):
                found.add(name)
            elif isinstance(action, MenuAction) and action.menu in parents:
                parents[action.menu].add(name)
        if menu.dials_directly:
            found.add(name)
    todo = deque(found)
    while todo:
        for parent in parents[todo.popleft()]:
            if parent not in found:
                found.add(parent)
                todo.append(parent)
    return found


# ---- cross-checks against the rest of the config ------------------------------------------


def check_references(
    ivr: IvrConfig,
    team_names: Collection[str],
    voicemail_boxes: Collection[str],
    prompt_exists: Callable[[str], bool],
    *,
    self_services: Collection[str] | None = None,
    section: str = "ivr",
) -> list[str]:
    """Problems with names the menus use that live elsewhere in the config, one message each,
    starting with the key path (``ivr.menus.main.options.1.team: no team named ...``).

    `prompt_exists(name)` says whether the prompt file exists (in every language the lines
    use); media URIs such as ``sound:beep`` are not checked. `self_services`, when given, are
    the self-service flows that exist.
    """
    problems: list[str] = []
    exists: dict[str, bool] = {}

    def check_prompt(path: str, name: str | None) -> None:
        if name is None or ":" in name:
            return
        if name not in exists:
            exists[name] = prompt_exists(name)
        if not exists[name]:
            problems.append(
                f"{path}: no prompt file for {name!r}; add ivr_prompts/<lang>/{name}.wav "
                "(see ivr_prompts/README.md) or fix the name"
            )

    def check_action(path: str, action: _Action) -> None:
        if isinstance(action, TeamAction) and action.team not in team_names:
            problems.append(
                f"{path}.team: no team named {action.team!r}; "
                + _suggest(action.team, team_names, "teams:")
            )
        elif isinstance(action, VoicemailAction) and action.voicemail not in voicemail_boxes:
            problems.append(
                f"{path}.voicemail: no voicemail box named {action.voicemail!r}; "
                + _suggest(action.voicemail, voicemail_boxes, "the voicemail boxes")
            )
        elif (
            isinstance(action, SelfServiceAction)
            and self_services is not None
            and action.self_service not in self_services
        ):
            problems.append(
                f"{path}.self_service: no self-service flow named {action.self_service!r}; "
                + _suggest(action.self_service, self_services, "the self-service flows")
            )

    check_prompt(f"{section}.recording_notice", ivr.recording_notice)
    for name, menu in ivr.menus.items():
        where = f"{section}.menus.{name}"
        check_prompt(f"{where}.prompt", menu.prompt)
        check_prompt(f"{where}.invalid_prompt", menu.invalid_prompt)
        check_prompt(f"{where}.timeout_prompt", menu.timeout_prompt)
        for key, action in menu.options.items():
            check_action(f"{where}.options.{key}", action)
        check_action(f"{where}.default", menu.default)
    return problems


# ---- the shipped menu ---------------------------------------------------------------------

# Team names tried, in order, for each caller category of the shipped menu.
DEFAULT_TEAM_CANDIDATES: Mapping[str, tuple[str, ...]] = {
    "customer": ("sales", "customers", "orders", "support"),
    "job_applicant": ("hr", "recruiting", "jobs"),
    "partner": ("partners", "suppliers", "purchasing", "procurement"),
}


def default_ivr(team_names: Collection[str], *, recording_notice: str | None = None) -> IvrConfig:
    """The shipped menu: 1 customers/orders, 2 job applicants, 3 partners and suppliers,
    0 operator. Each option rings the first existing team of `DEFAULT_TEAM_CANDIDATES`, or
    the operator (with the category kept) when the company has no such team."""

    def team_or_operator(category: str) -> dict[str, Any]:
        for team in DEFAULT_TEAM_CANDIDATES[category]:
            if team in team_names:
                return {"team": team, "category": category}
        return {"operator": True, "category": category}

    return IvrConfig.model_validate(
        {
            "start": "main",
            "recording_notice": recording_notice,
            "menus": {
                "main": {
                    "prompt": "main-menu",
                    "options": {
                        "1": team_or_operator("customer"),
                        "2": team_or_operator("job_applicant"),
                        "3": team_or_operator("partner"),
                        "0": {"operator": True},
                    },
                    "default": {"operator": True},
                }
            },
        }
    )


# ---- duplicate keys -----------------------------------------------------------------------


def find_duplicate_keys(yaml_text: str) -> list[tuple[str, str]]:
    """Keys given twice in the same YAML mapping, as (key path of the mapping, key).

    YAML loaders silently keep the last of two equal keys, so ``"1": {team: sales}`` followed
    by ``"1": {team: hr}`` would lose an option without a word. Keys are compared as YAML
    reads them (``1`` and ``"1"`` differ here; `IvrConfig` catches that pair). The path uses
    the loader's notation: ``ivr.menus.main.options``, ``lines[0]``; the top level is ``""``.
    Text that is not valid YAML gives ``[]``: the loader reports it.
    """
    loader = yaml.SafeLoader(yaml_text)
    try:
        root = loader.get_single_node()
        if root is None:
            return []
        found: list[tuple[str, str]] = []
        seen: set[int] = set()
        stack: list[tuple[yaml.Node, str]] = [(root, "")]
        while stack:
            node, path = stack.pop()
            if id(node) in seen:  # aliases share nodes, and may even form cycles
                continue
            seen.add(id(node))
            if isinstance(node, yaml.MappingNode):
                keys: set[object] = set()
                children: list[tuple[yaml.Node, str]] = []
                for key_node, value_node in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key, text = _key_value(loader, key_node)
                    if key in keys:
                        found.append((path, text))
                    keys.add(key)
                    children.append((value_node, f"{path}.{text}" if path else text))
                stack.extend(reversed(children))
            elif isinstance(node, yaml.SequenceNode):
                stack.extend(
                    (child, f"{path}[{i}]") for i, child in reversed(list(enumerate(node.value)))
                )
        return found
    except yaml.YAMLError:
        return []
    finally:
        loader.dispose()


def _key_value(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[object, str]:
    """(what to compare, how to show it) for a mapping key."""
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_object(node, deep=True)
        try:
            hash(value)
        except TypeError:
            return ("unhashable", node.value), str(node.value)
        # True and 1 are equal in Python but different YAML keys.
        return (type(value).__name__, value), str(value)
    # A mapping or list as a key is never a duplicate of anything here.
    return ("node", id(node)), "?"
