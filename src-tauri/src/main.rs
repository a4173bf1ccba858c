fn main() {
    lapwing::run();
}
