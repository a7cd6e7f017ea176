from evalhub.cli import main

main()
