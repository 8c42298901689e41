"""Every `stagebot` subcommand, in the order `--help` lists them."""

from bot.commands.base import Command
from bot.commands.demo import DEMO
from bot.commands.diagnose import DIAGNOSE
from bot.commands.status import STATUS

COMMANDS: tuple[Command, ...] = (STATUS, DIAGNOSE, DEMO)
