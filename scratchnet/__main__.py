from scratchnet.cli import main

main()
