from bench.metadata.run import main

main()
