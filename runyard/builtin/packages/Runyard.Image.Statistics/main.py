from runyard.builtin import images

images.statistics_main()
