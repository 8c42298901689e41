"""Every `stagebot` subcommand, in the order `--help` lists them."""

from bot.commands.base import Command
from bot.commands.db import DB
from bot.commands.demo import DEMO
from bot.commands.diagnose import DIAGNOSE
from bot.commands.e2e import E2E
from bot.commands.history import HISTORY
from bot.commands.serve import SERVE
from bot.commands.status import STATUS

COMMANDS: tuple[Command, ...] = (STATUS, DIAGNOSE, HISTORY, E2E, SERVE, DEMO, DB)
