dc1

dc2
