from ctcmon.cli import main

main()
