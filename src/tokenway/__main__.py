from tokenway.cli.main import main

main()
