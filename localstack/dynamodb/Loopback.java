// Loopback starts AWS's DynamoDB Local bound to 127.0.0.1 only.
//
// DynamoDB Local's own ServerRunner listens on every interface and has no option to change that.
// This launcher builds the server exactly as ServerRunner does (same command-line flags), then sets
// the host of its Jetty connectors to the loopback address before starting it.
//
// Run in Java's single-file source mode with the DynamoDB Local jar and its libraries on the class
// path: java -cp 'DynamoDBLocal.jar:DynamoDBLocal_lib/*' Loopback.java -inMemory -sharedDb -port N
import java.lang.reflect.Field;

import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class Loopback {
    public static void main(String[] args) throws Exception {
        String host = System.getProperty("eventfold.host", "127.0.0.1");
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field f = DynamoDBProxyServer.class.getDeclaredField("server");
        f.setAccessible(true);
        Server jetty = (Server) f.get(proxy);
        int bound = 0;
        for (Connector c : jetty.getConnectors()) {
            if (c instanceof ServerConnector sc) {
                sc.setHost(host);
                bound++;
            }
        }
        if (bound == 0) {
            System.err.println("Loopback: DynamoDB Local has no Jetty ServerConnector to bind to " + host);
            System.exit(2);
        }
        proxy.start();
        System.out.println("DynamoDB Local listening on " + host);
        proxy.join();
    }
}
