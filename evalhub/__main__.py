from evalhub.cli import run

run()
