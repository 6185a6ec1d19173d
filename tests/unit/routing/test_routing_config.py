"""The agents: and teams: config models: the documented shape and every error."""

from __future__ import annotations

import textwrap

import pytest

from pbx_service.config import teams as teams_config
from pbx_service.config.hours import Period
from pbx_service.config.teams import Agent, Team, agent_directory

from .helpers import errors_of, root, team

EXAMPLE = """
agents:
  ivanov: {name: Ivan Ivanov, endpoint: PJSIP/101, extension: 101}
  petrov: {name: Pyotr Petrov, endpoint: Local/102@agents}
  sidorov: {endpoint: "PJSIP/+74951234567@trunk"}
teams:
  reception:
    members: [PJSIP/201, PJSIP/202]
    ring_timeout: 25
  sales:
    members: [ivanov, petrov, sidorov]
    strategy: longest_idle
    ring_timeout: 15
    max_wait: 300
    wrap_up: 30
    hold_music: sales
    announce_position_every: 60
    overflow: {team: reception}
    rota:
      timezone: Europe/Moscow
      shifts:
        - {agents: [ivanov, petrov], days: mon-fri, hours: "09:00-18:00"}
        - {agents: [sidorov], days: sat-sun, hours: ["10:00-16:00"]}
    fallback_members: [PJSIP/200]
  support:
    members: [petrov]
    overflow: {callback_offer: true}
"""


def test_the_documented_example_parses() -> None:
    config = root(EXAMPLE)
    assert config.agents["ivanov"].extension == "101"
    assert config.agents["sidorov"].name is None
    sales = config.teams["sales"]
    assert sales.strategy == "longest_idle"
    assert (sales.ring_timeout, sales.max_wait, sales.wrap_up) == (15, 300, 30)
    assert sales.announce_position_every == 60
    assert sales.overflow is not None and sales.overflow.action == "team"
    assert sales.rota is not None
    assert sales.rota.shifts[0].weekdays() == [0, 1, 2, 3, 4]
    assert sales.rota.shifts[1].weekdays() == [5, 6]
    assert sales.rota.shifts[1].hours == [Period(600, 960)]
    assert sales.roster() == ["ivanov", "petrov", "sidorov", "PJSIP/200"]
    support = config.teams["support"]
    assert support.overflow is not None and support.overflow.action == "callback_offer"


def test_the_simple_form_keeps_its_defaults() -> None:
    reception = team("{members: [PJSIP/201, PJSIP/202], ring_timeout: 25}")
    assert reception.members == ["PJSIP/201", "PJSIP/202"]
    assert reception.ring_timeout == 25
    assert reception.strategy == "ring_all"
    assert (reception.wrap_up, reception.announce_position_every) == (0, 0)
    assert reception.overflow is None and reception.rota is None
    assert team("{members: [PJSIP/201]}").ring_timeout == 20


def test_the_directory_adds_an_agent_per_dial_string() -> None:
    config = root(EXAMPLE)
    directory = agent_directory(config.agents, config.teams)
    assert directory["ivanov"].endpoint == "PJSIP/101"
    assert directory["PJSIP/201"] == Agent(name="PJSIP/201", endpoint="PJSIP/201")
    assert directory["PJSIP/200"].endpoint == "PJSIP/200"
    assert set(directory) == {"ivanov", "petrov", "sidorov", "PJSIP/201", "PJSIP/202", "PJSIP/200"}


def test_an_agent_may_be_on_two_teams() -> None:
    config = root(EXAMPLE)
    assert "petrov" in config.teams["sales"].roster()
    assert "petrov" in config.teams["support"].roster()


def test_shift_shorthands_one_agent_one_period_and_day_lists() -> None:
    rota = team(
        """
        members: [a]
        rota:
          timezone: UTC
          shifts: [{agents: a, days: [sat, sun], hours: "22:00-06:00"}]
        """
    ).rota
    assert rota is not None
    assert rota.shifts[0].agents == ["a"]
    assert rota.shifts[0].weekdays() == [5, 6]
    assert rota.shifts[0].hours == [Period(1320, 360)]


def test_a_rota_alone_is_enough() -> None:
    only_rota = team(
        "{rota: {timezone: UTC, shifts: [{agents: [PJSIP/1], days: mon, hours: 09:00-10:00}]}}"
    )
    assert only_rota.members == []
    assert only_rota.roster() == ["PJSIP/1"]


AGENTS = "agents: {ivanov: {endpoint: PJSIP/101}, petrov: {endpoint: PJSIP/102}}\n"


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        (
            "teams: {sales: {members: [ivanov, kozlov]}}",
            "",
            "teams.sales.members[1]: no agent 'kozlov' (known: ivanov, petrov); write an agent id",
        ),
        (
            "teams: {sales: {members: [ivanov], rota: {timezone: UTC, shifts: "
            "[{agents: [ivanov, kozlov], days: mon, hours: 09:00-10:00}]}}}",
            "",
            "teams.sales.rota.shifts[0].agents[1]: no agent 'kozlov'",
        ),
        (
            "teams: {sales: {members: [ivanov], rota: {timezone: UTC, shifts: "
            "[{agents: [ivanov], days: mon, hours: 09:00-10:00}]}, fallback_members: [kozlov]}}",
            "",
            "teams.sales.fallback_members[0]: no agent 'kozlov'",
        ),
        (
            "teams: {sales: {members: [PJSIP/101]}}",
            "",
            "teams.sales.members[0]: PJSIP/101 is agent ivanov's phone; write ivanov instead",
        ),
        (
            "teams: {sales: {members: ['Ivan Ivanov']}}",
            "teams.sales.members",
            "'Ivan Ivanov' is neither an agent id nor a dial string",
        ),
        (
            "teams: {sales: {members: [ivanov, ivanov]}}",
            "teams.sales.members",
            "lists 'ivanov' twice; keep one entry",
        ),
        (
            "teams: {sales: {members: [ivanov], strategy: random}}",
            "teams.sales.strategy",
            "'ring_all', 'round_robin', 'longest_idle' or 'fewest_calls_today'",
        ),
        (
            "teams: {sales: {members: [ivanov], ring_timeout: -5}}",
            "teams.sales.ring_timeout",
            "greater than 0",
        ),
        (
            "teams: {sales: {members: [ivanov], max_wait: -1}}",
            "teams.sales.max_wait",
            "greater than 0",
        ),
        (
            "teams: {sales: {members: [ivanov], wrap_up: -1}}",
            "teams.sales.wrap_up",
            "greater than or equal to 0",
        ),
        (
            "teams: {sales: {members: [ivanov], announce_position_every: -30}}",
            "teams.sales.announce_position_every",
            "greater than or equal to 0",
        ),
        (
            "teams: {sales: {members: []}}",
            "teams.sales",
            "the team has nobody to ring; add members:",
        ),
        (
            "teams: {sales: {members: [ivanov], fallback_members: [petrov]}}",
            "teams.sales",
            "fallback_members is only used with a rota",
        ),
        (
            "teams: {sales: {members: [ivanov], overflow: {}}}",
            "teams.sales.overflow",
            "give exactly one overflow action (got none)",
        ),
        (
            "teams: {sales: {members: [ivanov], overflow: {voicemail: s, callback_offer: true}}}",
            "teams.sales.overflow",
            "(got voicemail, callback_offer)",
        ),
        (
            "teams: {sales: {members: [ivanov], overflow: voicemail}}",
            "teams.sales.overflow",
            "'voicemail' is not an overflow action; write {team: <team name>}",
        ),
        (
            "teams: {sales: {members: [ivanov], overflow: {voicemail: 'my box'}}}",
            "teams.sales.overflow.voicemail",
            "is not a voicemail box name",
        ),
        (
            "teams: {sales: {members: [ivanov], overflow: {team: support}}}",
            "",
            "teams.sales.overflow.team: no team named 'support'; use one of []",
        ),
        (
            "teams: {sales: {members: [ivanov], rota: {timezone: Europe/Moskow, shifts: "
            "[{agents: [ivanov], days: mon, hours: 09:00-10:00}]}}}",
            "teams.sales.rota.timezone",
            "did you mean Europe/Moscow?",
        ),
        (
            "teams: {sales: {members: [ivanov], rota: {timezone: UTC, shifts: "
            "[{agents: [ivanov], days: mon-fry, hours: 09:00-10:00}]}}}",
            "teams.sales.rota.shifts[0].days",
            "unknown day 'fry'",
        ),
        (
            "teams: {sales: {members: [ivanov], rota: {timezone: UTC, shifts: "
            "[{agents: [ivanov], days: mon, hours: '9-18'}]}}}",
            "teams.sales.rota.shifts[0].hours[0]",
            "write HH:MM-HH:MM",
        ),
        (
            "teams: {sales: {members: [ivanov], rota: {timezone: UTC, shifts: "
            "[{agents: [ivanov], days: mon-sun, hours: ['08:00-12:00', '20:00-09:00']}]}}}",
            "teams.sales.rota",
            'shifts[0]: "sunday 20:00-09:00" overlaps "monday 08:00-12:00"',
        ),
        (
            "teams: {sales: {members: [ivanov], rota: {timezone: UTC, shifts: []}}}",
            "teams.sales.rota.shifts",
            "at least 1 item",
        ),
        (
            "teams: {sales: {members: [ivanov], rota: {timezone: UTC, shifts: "
            "[{agents: [ivanov], days: mon, hours: 09:00-10:00, break: 1}]}}}",
            "teams.sales.rota.shifts[0].break",
            "Extra inputs are not permitted",
        ),
    ],
)
def test_errors_name_the_key_path_and_the_fix(text: str, where: str, fragment: str) -> None:
    problems = errors_of(AGENTS + text)
    assert len(problems) == 1, problems
    path, message = problems[0]
    assert path == where
    assert fragment in message


def test_an_overflow_loop_is_an_error() -> None:
    problems = errors_of(
        """
        teams:
          a: {members: [PJSIP/1], overflow: {team: b}}
          b: {members: [PJSIP/2], overflow: {team: c}}
          c: {members: [PJSIP/3], overflow: {team: a}}
        """
    )
    assert problems == [
        (
            "",
            "teams.a.overflow: the overflow loops (a -> b -> c -> a); end one of these teams' "
            "overflow with {voicemail: <box>} or {callback_offer: true}",
        )
    ]
    assert errors_of("teams: {a: {members: [PJSIP/1], overflow: {team: a}}}")[0][1].startswith(
        "teams.a.overflow: the overflow loops (a -> a)"
    )


def test_an_overflow_chain_that_ends_is_fine() -> None:
    config = root(
        """
        teams:
          a: {members: [PJSIP/1], overflow: {team: b}}
          b: {members: [PJSIP/2], overflow: {team: c}}
          c: {members: [PJSIP/3], overflow: {voicemail: general}}
          d: {members: [PJSIP/4], overflow: {team: c}}
        """
    )
    assert config.teams["a"].overflow == teams_config.Overflow(team="b")


def test_agent_errors() -> None:
    assert errors_of("agents: {x: {endpoint: '101'}}\nteams: {t: {members: [x]}}") == [
        ("agents.x.endpoint", "'101' is not a dial string; write TECH/resource such as PJSIP/101")
    ]
    assert errors_of("agents: {x: {endpoint: PJSIP/1, extension: '10a'}}\nteams: {}") == [
        ("agents.x.extension", "'10a' is not an extension; write digits such as \"101\"")
    ]
    assert errors_of("agents: {x/y: {endpoint: PJSIP/1}}\nteams: {}")[0][1].startswith(
        "agents.x/y: an agent id is letters, digits"
    )
    assert errors_of("agents: {x: {endpoint: PJSIP/1}, y: {endpoint: PJSIP/1}}\nteams: {}") == [
        (
            "",
            "agents.y.endpoint: PJSIP/1 is also agent x's phone; one phone is one agent, so "
            "give each agent their own endpoint",
        )
    ]


def test_models_are_frozen() -> None:
    reception = team("{members: [PJSIP/1]}")
    with pytest.raises(ValueError, match="frozen"):
        reception.ring_timeout = 5  # type: ignore[misc]
    assert isinstance(reception, Team)


def test_the_module_docstring_example_is_valid() -> None:
    doc = teams_config.__doc__ or ""
    example = doc.split("The keys::", 1)[1].split("\n\n", 2)[1]
    config = root(textwrap.dedent(example))
    assert set(config.teams) == {"reception", "sales"}
    assert config.teams["sales"].fallback_members == ["PJSIP/200"]
