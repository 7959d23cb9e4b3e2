from runyard.builtin import images

images.threshold_main()
