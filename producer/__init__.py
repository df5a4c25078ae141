"""Sources to article messages to the queue: seeds folder, feeds and manual enqueue."""
